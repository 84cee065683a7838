package cv_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chryscloud/chrysalis-go/cv"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/flowtest"
	"github.com/chryscloud/chrysalis-go/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The test pictures (see testdata/README.md for their source and licence):
//
//   - testdata/people-2s.jpg: the frame at 2.0 s of ../testdata/people.mp4,
//     itself the first 4 s of OpenCV's samples/data/vtest.avi (768x576,
//     pedestrians; the input of OpenCV's own peopledetect sample), from
//     Debian 12's opencv-doc 4.6.0+dfsg-12;
//   - testdata/messi5.jpg: OpenCV's samples/data/messi5.jpg, same package.
//
// Both are under Apache-2.0 AND BSD-3-Clause (Debian's copyright file for
// OpenCV, "Files: *").

// people are the hand-marked people of people-2s.jpg (tight boxes, head
// to feet), marked on 3x crops of the frame.
var people = map[string]image.Rectangle{
	"man in dark jacket, left":  image.Rect(363, 193, 401, 277),
	"man in black, walking":     image.Rect(437, 233, 481, 319),
	"man in red jacket, right":  image.Rect(687, 272, 722, 377),
	"woman in black, far right": image.Rect(729, 269, 755, 369),
}

// mustFind are the people the HOG detector must find. The woman walks
// shoulder to shoulder with the man in red: HOG's window grouping merges
// them into one box wider than either (logged, not required).
var mustFind = []string{"man in dark jacket, left", "man in black, walking", "man in red jacket, right"}

// face is messi5.jpg's one face, hand-marked.
var face = image.Rect(224, 91, 263, 133)

func iou(a, b image.Rectangle) float64 {
	in := a.Intersect(b)
	if in.Empty() {
		return 0
	}
	i := float64(in.Dx() * in.Dy())
	return i / (float64(a.Dx()*a.Dy()+b.Dx()*b.Dy()) - i)
}

// best is the detection with the highest IoU with want.
func best(dets []media.Detection, want image.Rectangle) (media.Detection, float64) {
	var bd media.Detection
	bi := 0.0
	for _, d := range dets {
		if v := iou(d.Box, want); v > bi {
			bd, bi = d, v
		}
	}
	return bd, bi
}

// loadJPEG decodes a JPEG into a BGR24 image, as a camera's frames are.
func loadJPEG(t testing.TB, path string) *media.ChImage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	im, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	r := im.Bounds()
	out := &media.ChImage{Camera: "test", Time: time.Now(), Width: r.Dx(), Height: r.Dy(), Stride: 3 * r.Dx(),
		Format: media.BGR24, Data: make([]byte, 3*r.Dx()*r.Dy())}
	for y := 0; y < r.Dy(); y++ {
		for x := 0; x < r.Dx(); x++ {
			cr, cg, cb, _ := im.At(x+r.Min.X, y+r.Min.Y).RGBA()
			i := y*out.Stride + 3*x
			out.Data[i], out.Data[i+1], out.Data[i+2] = byte(cb>>8), byte(cg>>8), byte(cr>>8)
		}
	}
	return out
}

// peopleHOG is the person detector configuration of the tests and the
// fan-out-models example: the people of vtest.avi are 80-110 px tall,
// shorter than HOG's 128-px window, so the frame is upscaled 1.5x.
var peopleHOG = cv.HOGOptions{Upscale: 1.5, Scale: 1.1}

func TestHOGFindsPeople(t *testing.T) {
	img := loadJPEG(t, filepath.Join("testdata", "people-2s.jpg"))
	hog, err := cv.NewHOG(peopleHOG)
	if err != nil {
		t.Fatal(err)
	}
	defer hog.Close()
	start := time.Now()
	dets, err := hog.Detect(img)
	lat := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("hog-people: %d boxes in %v on %dx%d", len(dets), lat.Round(time.Millisecond), img.Width, img.Height)
	for name, want := range people {
		d, v := best(dets, want)
		t.Logf("  %-26s marked %v, detected %v score %.2f, IoU %.2f", name, want, d.Box, d.Score, v)
	}
	for _, name := range mustFind {
		if d, v := best(dets, people[name]); v <= 0.5 || d.Label != "person" || d.Score <= 0 {
			t.Errorf("%s (%v): best detection %v %q score %.2f, IoU %.2f, want IoU > 0.5", name, people[name], d.Box, d.Label, d.Score, v)
		}
	}
}

func TestCascadeFindsFace(t *testing.T) {
	img := loadJPEG(t, filepath.Join("testdata", "messi5.jpg"))
	c, err := cv.NewCascade(cv.HaarFrontalFace, cv.CascadeOptions{Label: "face"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dets, err := c.Detect(img)
	if err != nil {
		t.Fatal(err)
	}
	d, v := best(dets, face)
	t.Logf("%s: %d boxes; the face %v: detected %v score %.2f, IoU %.2f", c.Name(), len(dets), face, d.Box, d.Score, v)
	if v <= 0.5 || d.Label != "face" || c.Name() != "haarcascade_frontalface_default" {
		t.Errorf("face %v: best %v %q (model %s), IoU %.2f, want IoU > 0.5", face, d.Box, d.Label, c.Name(), v)
	}
}

func TestCascadeErrors(t *testing.T) {
	if _, err := cv.NewHOG(cv.HOGOptions{Upscale: 100}); err == nil {
		t.Error("HOG upscaling 100x was accepted")
	}
	if _, err := cv.NewCascade("haarcascades/no_such_cascade.xml", cv.CascadeOptions{}); err == nil {
		t.Error("a missing cascade loaded")
	}
	bad := filepath.Join(t.TempDir(), "bad.xml")
	os.WriteFile(bad, []byte("<opencv_storage></opencv_storage>"), 0o644)
	if _, err := cv.NewCascade(bad, cv.CascadeOptions{}); err == nil {
		t.Error("a file that is no cascade loaded")
	}
	c, err := cv.NewCascade(cv.LBPFrontalFace, cv.CascadeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Detect(&media.ChImage{Width: 10, Height: 10, Stride: 30, Data: make([]byte, 20)}); err == nil {
		t.Error("a short image was accepted")
	}
	c.Close()
	if _, err := c.Detect(loadJPEG(t, filepath.Join("testdata", "messi5.jpg"))); err != cv.ErrClosed {
		t.Errorf("closed detector: %v, want ErrClosed", err)
	}
}

// TestDetectAnnotate runs Detect then Annotate on a shared frame: the
// detections are attached without touching the shared frame, the
// annotated copy is Modified and has the boxes drawn, and every buffer is
// released.
func TestDetectAnnotate(t *testing.T) {
	src := loadJPEG(t, filepath.Join("testdata", "messi5.jpg"))
	var pool media.ImagePool
	shared := pool.Clone(src) // a pooled frame, as a camera's
	shared.Retain()           // another branch holds it too
	before := bytes.Clone(shared.Data)

	c, err := cv.NewCascade(cv.HaarFrontalFace, cv.CascadeOptions{Label: "face"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	det := cv.Detect(c)
	got, err := flowtest.RunOp(t, det, []flow.Image{shared})
	if err != nil || len(got) != 1 {
		t.Fatalf("Detect: %d images, %v", len(got), err)
	}
	d, ok := got[0].DetectionsOf("haarcascade_frontalface_default")
	if !ok || len(d.Objects) == 0 || d.Latency <= 0 || d.Width != src.Width || d.Height != src.Height {
		t.Fatalf("detections %+v (found %v)", d, ok)
	}
	if s := det.Stats(); s.Frames != 1 || s.Objects != int64(len(d.Objects)) || s.Latency != d.Latency {
		t.Errorf("stats %+v, detections %d latency %v", s, len(d.Objects), d.Latency)
	}
	if len(shared.Detections) != 0 {
		t.Error("Detect wrote to the shared frame")
	}

	ann, err := flowtest.RunOp(t, cv.Annotate(), got)
	if err != nil || len(ann) != 1 {
		t.Fatalf("Annotate: %d images, %v", len(ann), err)
	}
	a := ann[0]
	if !a.Modified || len(a.Detections) != 1 || &a.Data[0] == &shared.Data[0] {
		t.Errorf("annotated: modified %v, %d detections, own pixels %v", a.Modified, len(a.Detections), &a.Data[0] != &shared.Data[0])
	}
	if !bytes.Equal(shared.Data, before) {
		t.Error("Annotate drew on the shared frame")
	}
	// The box's top-left corner is drawn in the first model's colour
	// (green: B=0, G=255, R=0 in BGR).
	b := d.Objects[0].Box
	p := a.Data[b.Min.Y*a.Stride+3*b.Min.X:]
	if p[0] > 40 || p[1] < 200 || p[2] > 40 {
		t.Errorf("pixel at the box corner %v is %v, want green", b.Min, p[:3])
	}
	a.Release()
	if flowtest.Released(shared) {
		t.Fatal("the other branch's hold was released")
	}
	shared.Release()
	if !flowtest.Released(shared) {
		t.Error("the frame was not released after every holder released it")
	}
}

// Images smaller than a model's window give no detections, not a crash;
// images about its size do not crash either.
func TestTinyImages(t *testing.T) {
	for _, up := range []float64{1, 1.5} {
		hog, err := cv.NewHOG(cv.HOGOptions{Upscale: up})
		if err != nil {
			t.Fatal(err)
		}
		for _, sz := range [][2]int{{63, 128}, {64, 127}, {64, 128}, {65, 129}, {72, 136}, {100, 200}, {43, 86}, {200, 100}} {
			img := &media.ChImage{Width: sz[0], Height: sz[1], Stride: 3 * sz[0], Data: make([]byte, 3*sz[0]*sz[1])}
			for i := range img.Data {
				img.Data[i] = byte(i * 7)
			}
			if _, err := hog.Detect(img); err != nil {
				t.Errorf("hog x%v on %v: %v", up, sz, err)
			}
		}
		hog.Close()
	}

	hog, err := cv.NewHOG(cv.HOGOptions{Upscale: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer hog.Close()
	face, err := cv.NewCascade(cv.HaarFrontalFace, cv.CascadeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer face.Close()
	for _, pf := range []media.PixelFormat{media.BGR24, media.RGB24, media.GRAY8} {
		img := &media.ChImage{Width: 10, Height: 7, Stride: 10 * pf.BytesPerPixel(), Format: pf, Data: make([]byte, 70*pf.BytesPerPixel())}
		for _, d := range []cv.Detector{hog, face} {
			if got, err := d.Detect(img); err != nil || len(got) != 0 {
				t.Errorf("%s on a 10x7 %v image: %v, %v", d.Name(), pf, got, err)
			}
		}
	}
}

// An image with no box passes Annotate untouched: no copy.
func TestAnnotateNothing(t *testing.T) {
	img := loadJPEG(t, filepath.Join("testdata", "messi5.jpg")).WithDetections(media.Detections{Model: "m"})
	got, err := flowtest.RunOp(t, cv.Annotate(), []flow.Image{img})
	if err != nil || len(got) != 1 || got[0] != img || img.Modified {
		t.Errorf("got %d images (same %v), modified %v, %v", len(got), len(got) == 1 && got[0] == img, img.Modified, err)
	}
}

// NaN and infinite options are refused when the detector is made (they
// passed the range checks: the detector then found nothing, or failed on
// every frame).
func TestNonFiniteOptions(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, o := range []cv.HOGOptions{{Upscale: nan}, {Scale: nan}, {Scale: inf}, {HitThreshold: nan}, {HitThreshold: inf}, {Upscale: math.Inf(-1)}} {
		if h, err := cv.NewHOG(o); err == nil {
			h.Close()
			t.Errorf("NewHOG(%+v) accepted", o)
		}
	}
	for _, o := range []cv.CascadeOptions{{Scale: nan}, {Scale: inf}} {
		if c, err := cv.NewCascade(cv.LBPFrontalFace, o); err == nil {
			c.Close()
			t.Errorf("NewCascade(%+v) accepted", o)
		}
	}
}
