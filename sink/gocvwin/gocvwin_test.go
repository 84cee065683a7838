package gocvwin_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testx"
	"github.com/chryscloud/chrysalis-go/sink/gocvwin"
)

const t0 = int64(1_750_000_000_000)

// screenshot decodes the first keyframe of clip720.mp4 with o.
func screenshot(t testing.TB, o chrysalis.CameraOptions) *chrysalis.ChImage {
	t.Helper()
	mc := cache.NewMemory(cache.Retention{})
	t.Cleanup(func() { mc.Close() })
	testclip.Load(t, "clip720.mp4").Append(t, mc, "cam", t0, 40)
	cam := chrysalis.New(mc, chrysalis.Options{}).Camera("cam", o)
	defer cam.Close()
	img, err := cam.Screenshot(context.Background(), time.UnixMilli(t0))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestToMat(t *testing.T) {
	for _, tc := range []struct {
		pf chrysalis.PixelFormat
		mt gocv.MatType
		ch int
	}{
		{chrysalis.BGR24, gocv.MatTypeCV8UC3, 3},
		{chrysalis.RGB24, gocv.MatTypeCV8UC3, 3},
		{chrysalis.GRAY8, gocv.MatTypeCV8UC1, 1},
	} {
		t.Run(tc.pf.String(), func(t *testing.T) {
			img := screenshot(t, chrysalis.CameraOptions{Format: tc.pf})
			m, err := gocvwin.ToMat(img)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Rows() != 720 || m.Cols() != 1280 || m.Type() != tc.mt || m.Channels() != tc.ch {
				t.Fatalf("Mat %dx%d type %v channels %d", m.Cols(), m.Rows(), m.Type(), m.Channels())
			}
			if !bytes.Equal(m.ToBytes(), img.Data) {
				t.Fatal("pixels differ")
			}
			// Zero copy: the Mat's data is the image's buffer.
			p, err := m.DataPtrUint8()
			if err != nil || &p[0] != &img.Data[0] {
				t.Fatalf("ToMat copied the pixels (%v)", err)
			}
			if tc.pf == chrysalis.BGR24 {
				// OpenCV reads it as BGR: pixel (0,0) through the Mat API.
				v := m.GetVecbAt(0, 0)
				if v[0] != img.Data[0] || v[1] != img.Data[1] || v[2] != img.Data[2] {
					t.Fatalf("Mat(0,0) = %v, image %v", v, img.Data[:3])
				}
			}
			c, err := gocvwin.ToMatCopy(img)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if q, _ := c.DataPtrUint8(); &q[0] == &img.Data[0] || !bytes.Equal(c.ToBytes(), img.Data) {
				t.Fatal("ToMatCopy did not copy exactly")
			}
		})
	}
	t.Run("padded rows", func(t *testing.T) {
		img := screenshot(t, chrysalis.CameraOptions{Width: 64, Height: 36})
		padded := chrysalis.ChImage{Width: img.Width, Height: img.Height, Format: img.Format}
		padded.Stride = 64*3 + 8
		padded.Data = make([]byte, 36*padded.Stride)
		for y := 0; y < 36; y++ {
			copy(padded.Data[y*padded.Stride:], img.Data[y*img.Stride:(y+1)*img.Stride])
		}
		m, err := gocvwin.ToMat(&padded)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if m.Rows() != 36 || m.Cols() != 64 || !bytes.Equal(m.ToBytes(), img.Data) {
			t.Fatal("padded image not copied row by row")
		}
	})
	t.Run("errors", func(t *testing.T) {
		if _, err := gocvwin.ToMat(&chrysalis.ChImage{Width: 10, Height: 10, Stride: 30, Data: make([]byte, 10)}); err == nil {
			t.Error("short buffer accepted")
		}
		if _, err := gocvwin.ToMat(&chrysalis.ChImage{Width: 1, Height: 1, Stride: 3, Format: 9, Data: make([]byte, 3)}); err == nil {
			t.Error("unknown format accepted")
		}
	})
}

// capture grabs the X screen with xwd and converts it with ImageMagick.
func capture(t *testing.T, display string) image.Image {
	t.Helper()
	xwd, err := exec.Command("xwd", "-root", "-silent", "-display", display).Output()
	if err != nil {
		t.Fatalf("xwd: %v", err)
	}
	conv := exec.Command("convert", "xwd:-", "png:-")
	conv.Stdin = bytes.NewReader(xwd)
	out, err := conv.Output()
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	m, err := png.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// toBGR converts m to packed BGR24.
func toBGR(m image.Image) (pix []byte, w, h int) {
	b := m.Bounds()
	w, h = b.Dx(), b.Dy()
	pix = make([]byte, 0, w*h*3)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := m.At(x, y).RGBA()
			pix = append(pix, byte(bl>>8), byte(g>>8), byte(r>>8))
		}
	}
	return pix, w, h
}

// locate finds where frame (fw x fh BGR) appears in screen (sw x sh BGR)
// by the smallest sum of absolute differences over sample points, and
// returns the top-left corner. Pure arithmetic over private slices: not
// race-instrumented.
//
//go:norace
func locate(screen []byte, sw, sh int, frame []byte, fw, fh int) (bx, by int) {
	type pt struct{ x, y int }
	var pts []pt
	for i := 0; i < 400; i++ { // a fixed scatter over the frame
		pts = append(pts, pt{(i * 7919) % fw, (i * 104729 / 7) % fh})
	}
	best := int(^uint(0) >> 1)
	for y := 0; y <= sh-fh; y++ {
		for x := 0; x <= sw-fw; x++ {
			sad := 0
			for _, p := range pts {
				s := ((y+p.y)*sw + x + p.x) * 3
				f := (p.y*fw + p.x) * 3
				for c := 0; c < 3; c++ {
					d := int(screen[s+c]) - int(frame[f+c])
					if d < 0 {
						d = -d
					}
					sad += d
				}
				if sad >= best {
					break
				}
			}
			if sad < best {
				best, bx, by = sad, x, y
			}
		}
	}
	return bx, by
}

// The window shows the frame it was given: under Xvfb, a helper process
// shows a 640x360 frame; the screen grabbed with xwd contains it.
//
// The window runs in a subprocess because Qt (Debian's OpenCV HighGUI
// backend) binds a process to one X display for life and aborts the
// process when that display goes away.
func TestWindow(t *testing.T) {
	testx.Require(t, "xwd", "convert")
	display := testx.Xvfb(t)
	// What the screen should show: the BGR frame, the RGB frame in its true
	// colours, or the gray one as gray.
	bgr := screenshot(t, chrysalis.CameraOptions{Width: 640, Height: 360}).Data
	gray := screenshot(t, chrysalis.CameraOptions{Width: 640, Height: 360, Format: chrysalis.GRAY8}).Data
	gray3 := make([]byte, 0, len(gray)*3)
	for _, g := range gray {
		gray3 = append(gray3, g, g, g)
	}
	// The RGB24 image, in screen (BGR) order. (It is not the BGR24 image:
	// swscale's RGB24 path rounds differently, 45.2 dB apart.)
	rgb := screenshot(t, chrysalis.CameraOptions{Width: 640, Height: 360, Format: chrysalis.RGB24}).Data
	rgbAsBGR := make([]byte, len(rgb))
	for i := 0; i+2 < len(rgb); i += 3 {
		rgbAsBGR[i], rgbAsBGR[i+1], rgbAsBGR[i+2] = rgb[i+2], rgb[i+1], rgb[i]
	}
	// The window shows each pixel as given: the screen holds the frame
	// bit-exact.
	for _, tc := range []struct {
		format string
		want   []byte
	}{{"bgr24", bgr}, {"rgb24", rgbAsBGR}, {"gray8", gray3}} {
		t.Run(tc.format, func(t *testing.T) {
			shot := showAndCapture(t, display, tc.format)
			scr, sw, sh := toBGR(shot)
			x, y := locate(scr, sw, sh, tc.want, 640, 360)
			region := make([]byte, 0, 640*360*3)
			for r := 0; r < 360; r++ {
				region = append(region, scr[((y+r)*sw+x)*3:((y+r)*sw+x+640)*3]...)
			}
			p := testclip.PSNR(region, tc.want)
			var mad float64
			for i := range region {
				d := float64(region[i]) - float64(tc.want[i])
				mad += max(d, -d)
			}
			mad /= float64(len(region))
			t.Logf("frame found on screen at (%d,%d): PSNR %.1f dB, mean abs diff %.2f", x, y, p, mad)
			if !bytes.Equal(region, tc.want) {
				t.Fatalf("window content differs from the frame: PSNR %.1f dB at (%d,%d), want bit-exact", p, x, y)
			}
		})
	}
}

// showAndCapture runs TestWindowHelper on display showing a 640x360 frame
// in format, and grabs the screen while it does.
func showAndCapture(t *testing.T, display, format string) image.Image {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	helper := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestWindowHelper$", "-test.v", "-test.count=1")
	helper.Env = append(os.Environ(), "DISPLAY="+display, "GOCVWIN_HELPER="+format, "QT_X11_NO_MITSHM=1")
	stdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	helper.Stderr = &stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	shown := make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stdout)
		once := false
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if sc.Text() == "SHOWN" && !once {
				once = true
				close(shown)
			}
		}
	}()
	select {
	case <-shown:
	case <-scanned:
		helper.Wait()
		t.Fatalf("helper ended before showing:\n%s\n%s", out.String(), stderr.String())
	case <-ctx.Done():
		t.Fatal("helper did not show the frame in time")
	}
	time.Sleep(300 * time.Millisecond) // let the X server paint
	shot := capture(t, display)
	stdin.Close() // the helper cancels its sink and exits
	<-scanned
	werr := helper.Wait()

	// SINK_SCREENSHOT_DIR keeps the capture after the test.
	dir := os.Getenv("SINK_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "screen-"+format+".png")
	var buf bytes.Buffer
	png.Encode(&buf, shot)
	os.WriteFile(path, buf.Bytes(), 0o644)
	t.Logf("screen capture: %s (%v)", path, shot.Bounds())
	if werr != nil || !strings.Contains(out.String(), "DONE") {
		t.Fatalf("helper: %v\n%s\n%s", werr, out.String(), stderr.String())
	}
	return shot
}

// TestWindowHelper is the subprocess of TestWindow.
func TestWindowHelper(t *testing.T) {
	format := os.Getenv("GOCVWIN_HELPER")
	if format == "" {
		t.Skip("run by TestWindow")
	}
	pf := map[string]chrysalis.PixelFormat{"bgr24": chrysalis.BGR24, "rgb24": chrysalis.RGB24, "gray8": chrysalis.GRAY8}[format]
	frame := screenshot(t, chrysalis.CameraOptions{Width: 640, Height: 360, Format: pf})
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	go func() { // the parent closes stdin when it is done
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	in := make(chan flow.Image)
	done := make(chan error, 1)
	go func() { done <- gocvwin.Window("chrysalis test", gocvwin.WindowOptions{}).Run(ctx, in) }()
	var runErr error
	ended := false
	for i := 0; !ended; i++ {
		img := &chrysalis.ChImage{Camera: frame.Camera, Time: frame.Time, Width: frame.Width, Height: frame.Height,
			Stride: frame.Stride, Format: frame.Format, Data: frame.Data}
		select {
		case in <- img:
		case runErr = <-done:
			ended = true
			continue
		}
		if i == 10 {
			fmt.Println("SHOWN")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ctx.Err() == nil {
		t.Fatalf("window ended before the parent was done: %v", runErr)
	}
	if !errors.Is(runErr, context.Canceled) {
		t.Fatalf("Run: %v, want context.Canceled", runErr)
	}
	fmt.Println("DONE")
}
