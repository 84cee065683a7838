package convert_test

import (
	"bytes"
	"errors"
	"image"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/flowtest"
	"github.com/chryscloud/chrysalis-go/media"
	"github.com/chryscloud/chrysalis-go/operator/convert"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// quadrants is a 64x48 BGR24 frame (stride padded to 200 bytes): red top
// left, green top right, blue bottom left, white bottom right, with one
// person detection on the white quadrant.
func quadrants() *media.ChImage {
	const w, h, stride = 64, 48, 200
	img := &media.ChImage{Camera: "cam", Time: time.UnixMilli(1000), ID: media.ID{MS: 1000, Seq: 2}, Width: w, Height: h,
		Stride: stride, Format: media.BGR24, Data: make([]byte, stride*h)}
	for y := range h {
		for x := range w {
			var bgr [3]byte
			switch {
			case y < h/2 && x < w/2:
				bgr = [3]byte{0, 0, 255}
			case y < h/2:
				bgr = [3]byte{0, 255, 0}
			case x < w/2:
				bgr = [3]byte{255, 0, 0}
			default:
				bgr = [3]byte{255, 255, 255}
			}
			copy(img.Data[y*stride+3*x:], bgr[:])
		}
	}
	img.Detections = []media.Detections{{Model: "m", Width: w, Height: h,
		Objects: []media.Detection{{Box: image.Rect(40, 30, 56, 46), Label: "person", Score: 1}}}}
	return img
}

func px(img *media.ChImage, x, y int) []byte {
	bpp := img.Format.BytesPerPixel()
	return img.Data[y*img.Stride+bpp*x : y*img.Stride+bpp*(x+1)]
}

func near(got []byte, want ...byte) bool {
	for i := range want {
		if d := int(got[i]) - int(want[i]); d < -6 || d > 6 {
			return false
		}
	}
	return true
}

func run(t *testing.T, op *convert.Op, img *media.ChImage) *media.ChImage {
	t.Helper()
	img.Retain() // the test keeps a hold, as another branch would
	before := bytes.Clone(img.Data)
	got, err := flowtest.RunOp(t, op, []flow.Image{img})
	if err != nil || len(got) != 1 {
		t.Fatalf("%d images, %v", len(got), err)
	}
	if !bytes.Equal(img.Data, before) {
		t.Fatal("the input frame was written to")
	}
	out := got[0]
	if !out.Modified || out.Camera != "cam" || out.ID != img.ID || !out.Time.Equal(img.Time) || out.Check() != nil {
		t.Errorf("output metadata: modified %v camera %q id %v time %v, check %v", out.Modified, out.Camera, out.ID, out.Time, out.Check())
	}
	return out
}

func TestGray(t *testing.T) {
	out := run(t, convert.Gray(), quadrants())
	if out.Format != media.GRAY8 || out.Width != 64 || out.Height != 48 || out.Stride != 64 {
		t.Fatalf("%v %dx%d stride %d", out.Format, out.Width, out.Height, out.Stride)
	}
	// BT.601 luma of pure red, green, blue, white (full range).
	for _, c := range []struct {
		x, y int
		luma byte
	}{{8, 8, 76}, {48, 8, 150}, {8, 40, 29}, {48, 40, 255}} {
		if g := px(out, c.x, c.y); !near(g, c.luma) {
			t.Errorf("gray at (%d,%d) = %d, want about %d", c.x, c.y, g[0], c.luma)
		}
	}
}

func TestResize(t *testing.T) {
	out := run(t, convert.Resize(32, 0), quadrants()) // aspect kept: 32x24
	if out.Format != media.BGR24 || out.Width != 32 || out.Height != 24 || out.Stride != 96 {
		t.Fatalf("%v %dx%d stride %d", out.Format, out.Width, out.Height, out.Stride)
	}
	if !near(px(out, 4, 4), 0, 0, 255) || !near(px(out, 28, 20), 255, 255, 255) {
		t.Errorf("colours %v %v, want red and white", px(out, 4, 4), px(out, 28, 20))
	}
	if d := out.Detections[0]; d.Width != 32 || d.Height != 24 || d.Objects[0].Box != image.Rect(20, 15, 28, 23) {
		t.Errorf("detections not scaled: %+v", d)
	}
}

func TestCropResizeGray(t *testing.T) {
	// The white quadrant, doubled, gray: one pass.
	op := &convert.Op{Crop: image.Rect(32, 24, 64, 48), Width: 64, Height: 48, Format: convert.GRAY8}
	out := run(t, op, quadrants())
	if out.Width != 64 || out.Height != 48 || out.Format != media.GRAY8 {
		t.Fatalf("%v %dx%d", out.Format, out.Width, out.Height)
	}
	for _, p := range [][2]int{{0, 0}, {63, 47}, {32, 24}} {
		if g := px(out, p[0], p[1]); !near(g, 255) {
			t.Errorf("gray at %v = %d, want white", p, g[0])
		}
	}
	if d := out.Detections[0]; d.Objects[0].Box != image.Rect(16, 12, 48, 44) {
		t.Errorf("detection not moved into the crop: %v", d.Objects[0].Box)
	}
	// A crop past the edge is clipped; one outside drops the image.
	op = convert.Crop(image.Rect(100, 100, 200, 200))
	got, err := flowtest.RunOp(t, op, []flow.Image{quadrants()})
	if err != nil || len(got) != 0 || op.Dropped() != 1 {
		t.Errorf("crop outside: %d images, %d dropped, %v", len(got), op.Dropped(), err)
	}
}

func TestPooled(t *testing.T) {
	// In steady state the outputs reuse the pool's buffers.
	op := convert.Resize(16, 12)
	var bufs []*byte
	for range 3 {
		out := run(t, op, quadrants())
		bufs = append(bufs, &out.Data[0])
		out.Release()
	}
	if bufs[1] != bufs[0] || bufs[2] != bufs[0] {
		t.Error("released outputs' buffers were not reused")
	}
}

func TestBadInput(t *testing.T) {
	_, err := flowtest.RunOp(t, convert.Resize(-1, 10), []flow.Image{quadrants()})
	if !errors.Is(err, convert.ErrBadSize) {
		t.Errorf("Resize(-1, 10): %v, want ErrBadSize", err)
	}
	// Aspect ratio kept from a 1-px-wide crop: 8192 px wide makes 393216
	// px tall.
	_, err = flowtest.RunOp(t, &convert.Op{Crop: image.Rect(0, 0, 1, 48), Width: 8192}, []flow.Image{quadrants()})
	if !errors.Is(err, convert.ErrBadSize) {
		t.Errorf("393216-px-tall output: %v, want ErrBadSize", err)
	}
	// Tiny outputs are fine.
	for _, op := range []*convert.Op{convert.Resize(1, 1), convert.Crop(image.Rect(5, 5, 6, 6)), {Crop: image.Rect(0, 0, 3, 1), Format: convert.GRAY8}} {
		out := run(t, op, quadrants())
		if out.Width > 3 || out.Height != 1 {
			t.Errorf("%+v: %dx%d", op, out.Width, out.Height)
		}
	}
	bad := quadrants()
	bad.Data = bad.Data[:100]
	_, err = flowtest.RunOp(t, convert.Gray(), []flow.Image{bad})
	if !errors.Is(err, media.ErrBadImage) {
		t.Errorf("short image: %v, want ErrBadImage", err)
	}
}

// A dropped image is not silent: the first drop is logged at Warn with
// the count.
func TestDropWarns(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	defer slog.SetDefault(prev)
	op := convert.Crop(image.Rect(100, 100, 200, 200))
	got, err := flowtest.RunOp(t, op, []flow.Image{quadrants(), quadrants()})
	if err != nil || len(got) != 0 || op.Dropped() != 2 {
		t.Fatalf("crop outside: %d images, %d dropped, %v", len(got), op.Dropped(), err)
	}
	if s := buf.String(); !strings.Contains(s, "level=WARN") || !strings.Contains(s, "dropped=1") ||
		strings.Count(s, "level=WARN") != 1 {
		t.Errorf("want one Warn with the count, got %q", s)
	}
}
