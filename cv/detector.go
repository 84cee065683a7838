package cv

// #cgo pkg-config: opencv4
// #cgo CXXFLAGS: --std=c++11
// #include <stdlib.h>
// #include "shim.h"
import "C"

import (
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"unsafe"

	"github.com/chryscloud/chrysalis-go/internal/av"
	"github.com/chryscloud/chrysalis-go/media"
)

// Detector is a model that finds objects in an image. Detect reads img
// during the call only and returns boxes in img's pixels. A Detector is not
// safe for concurrent use: the Detect operator calls it from one
// goroutine.
type Detector interface {
	// Name names the model in Detections.Model, e.g. "hog-people".
	Name() string
	// Detect runs the model on img.
	Detect(img *media.ChImage) ([]media.Detection, error)
	// Close frees the model.
	Close() error
}

// ErrClosed is returned by a closed detector's Detect.
var ErrClosed = errors.New("cv: detector closed")

// cimg describes img's pixels to the shim, after checking them.
func cimg(img *media.ChImage) (C.chr_img, error) {
	if err := img.Check(); err != nil {
		return C.chr_img{}, fmt.Errorf("cv: %w", err)
	}
	ch, rgb := 3, 0
	switch img.Format {
	case media.GRAY8:
		ch = 1
	case media.RGB24:
		rgb = 1
	}
	return C.chr_img{data: (*C.uchar)(unsafe.Pointer(&img.Data[0])), w: C.int(img.Width), h: C.int(img.Height),
		stride: C.int(img.Stride), channels: C.int(ch), rgb: C.int(rgb)}, nil
}

// results converts the shim's result (and frees it).
func results(r C.chr_result, label string, shrink func(image.Rectangle) image.Rectangle) ([]media.Detection, error) {
	defer C.chr_result_free(r)
	if r.err != nil {
		return nil, fmt.Errorf("cv: opencv: %s", C.GoString(r.err))
	}
	if r.n == 0 {
		return nil, nil
	}
	dets := unsafe.Slice(r.dets, int(r.n))
	out := make([]media.Detection, len(dets))
	for i, d := range dets {
		b := image.Rect(int(d.x), int(d.y), int(d.x+d.w), int(d.y+d.h))
		if shrink != nil {
			b = shrink(b)
		}
		out[i] = media.Detection{Box: b, Label: label, Score: float64(d.score)}
	}
	return out, nil
}

// HOGOptions tune the HOG people detector. Zero fields take the defaults
// of OpenCV's people detection sample.
type HOGOptions struct {
	// HitThreshold is the SVM margin a window needs (default 0). Raise it
	// to trade recall for precision.
	HitThreshold float64
	// WinStride is the detection window's step in pixels (default 8).
	WinStride int
	// Scale is the pyramid step between scales (default 1.05).
	Scale float64
	// GroupThreshold is how many overlapping windows make a detection
	// (default 2).
	GroupThreshold int
	// Upscale, when > 1, enlarges the image by this factor before
	// detecting (boxes are mapped back): the detector's window is 64x128,
	// so people shorter than about 100 px need it. Default 1, at most 4.
	Upscale float64
	// KeepWindow keeps the raw detection windows. By default boxes are
	// shrunk as in OpenCV's peopledetect sample (10% off each side, 7% off
	// the top, height x 0.8), because the window includes a margin around
	// the person.
	KeepWindow bool
}

// HOG is OpenCV's HOG + linear SVM people detector (Dalal and Triggs), the
// default people detector built into OpenCV: no model file to download.
// Its labels are "person"; scores are SVM margins (about 0 to 3).
type HOG struct {
	o    HOGOptions
	mu   sync.Mutex
	h    C.chr_hog
	conv av.Converter
	up   []byte // upscaled pixels, reused
}

// NewHOG returns a HOG people detector. Close it when done.
func NewHOG(o HOGOptions) (*HOG, error) {
	if err := finite("HOG", o.HitThreshold, o.Scale, o.Upscale); err != nil {
		return nil, err
	}
	if o.WinStride <= 0 {
		o.WinStride = 8
	}
	if o.Scale <= 1 {
		o.Scale = 1.05
	}
	if o.GroupThreshold <= 0 {
		o.GroupThreshold = 2
	}
	if o.Upscale < 1 {
		o.Upscale = 1
	}
	if o.Upscale > 4 || o.HitThreshold < 0 {
		return nil, fmt.Errorf("cv: HOG: Upscale %v (at most 4), HitThreshold %v (at least 0)", o.Upscale, o.HitThreshold)
	}
	h := C.chr_hog_new()
	if h == nil {
		return nil, errors.New("cv: creating the HOG people detector failed")
	}
	d := &HOG{o: o, h: h}
	runtime.SetFinalizer(d, (*HOG).Close)
	return d, nil
}

// finite rejects a NaN or infinite option (they pass the range checks, and
// the detector then silently finds nothing or fails on every frame).
func finite(model string, vs ...float64) error {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("cv: %s: option %v is not a finite number", model, v)
		}
	}
	return nil
}

// hogWinW and hogWinH are the default people detector's window.
const hogWinW, hogWinH = 64, 128

// Name implements Detector: "hog-people".
func (d *HOG) Name() string { return "hog-people" }

// Detect implements Detector.
func (d *HOG) Detect(img *media.ChImage) ([]media.Detection, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.h == nil {
		return nil, ErrClosed
	}
	src, up := img, d.o.Upscale
	if up > 1 {
		var err error
		if src, err = d.upscale(img); err != nil {
			return nil, err
		}
	}
	ci, err := cimg(src)
	if err != nil {
		return nil, err
	}
	if src.Width < hogWinW || src.Height < hogWinH {
		// Nothing fits; OpenCV 4.6 corrupts its heap on such an image.
		return nil, nil
	}
	r := C.chr_hog_detect(d.h, ci, C.double(d.o.HitThreshold), C.int(d.o.WinStride), C.double(d.o.Scale), C.double(d.o.GroupThreshold))
	runtime.KeepAlive(src)
	return results(r, "person", func(b image.Rectangle) image.Rectangle {
		if !d.o.KeepWindow {
			w, h := b.Dx(), b.Dy()
			b.Min.X += w / 10
			b.Min.Y += h * 7 / 100
			b.Max.X = b.Min.X + w*8/10
			b.Max.Y = b.Min.Y + h*8/10
		}
		if up > 1 {
			b = image.Rect(int(float64(b.Min.X)/up), int(float64(b.Min.Y)/up), int(float64(b.Max.X)/up), int(float64(b.Max.Y)/up))
		}
		return b.Intersect(image.Rect(0, 0, img.Width, img.Height))
	})
}

// upscale enlarges img by the Upscale factor into d.up (one swscale pass).
func (d *HOG) upscale(img *media.ChImage) (*media.ChImage, error) {
	if err := img.Check(); err != nil {
		return nil, fmt.Errorf("cv: %w", err)
	}
	w, h := int(float64(img.Width)*d.o.Upscale+0.5), int(float64(img.Height)*d.o.Upscale+0.5)
	data, stride, w, h, err := d.conv.Packed(img.Data, img.Stride, img.Width, img.Height, img.Format, image.Rectangle{}, w, h, img.Format, d.up)
	if err != nil {
		return nil, fmt.Errorf("cv: upscale: %w", err)
	}
	d.up = data
	return &media.ChImage{Width: w, Height: h, Stride: stride, Format: img.Format, Data: data}, nil
}

// Close implements Detector. It is idempotent.
func (d *HOG) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.conv.Close()
	d.up = nil
	if d.h != nil {
		C.chr_hog_free(d.h)
		d.h = nil
	}
	return nil
}

// The cascades of Debian's opencv-data package (OpenCV's data/ folder).
const (
	// HaarFrontalFace is the classic Viola-Jones frontal face cascade.
	HaarFrontalFace = "haarcascades/haarcascade_frontalface_default.xml"
	// HaarFullBody finds whole standing people.
	HaarFullBody = "haarcascades/haarcascade_fullbody.xml"
	// HaarUpperBody finds heads and shoulders.
	HaarUpperBody = "haarcascades/haarcascade_upperbody.xml"
	// LBPFrontalFace is the faster LBP frontal face cascade.
	LBPFrontalFace = "lbpcascades/lbpcascade_frontalface_improved.xml"
)

// DataDirs are where CascadeFile looks for OpenCV's data, in order:
// $OPENCV_DATA, then Debian's opencv-data location.
var DataDirs = []string{os.Getenv("OPENCV_DATA"), "/usr/share/opencv4", "/usr/local/share/opencv4"}

// CascadeFile returns the path of a cascade (e.g. HaarFrontalFace) in the
// first of DataDirs that has it.
func CascadeFile(name string) (string, error) {
	if filepath.IsAbs(name) {
		return name, nil
	}
	for _, dir := range DataDirs {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("cv: cascade %s not found in %q (Debian: apt-get install opencv-data; or set OPENCV_DATA)", name, DataDirs)
}

// CascadeOptions configure a cascade detector. Zero fields take the
// defaults of OpenCV's face detection sample.
type CascadeOptions struct {
	// Model names the detector in its detections; default the cascade
	// file's name without extension.
	Model string
	// Label is each detection's label. Default "object".
	Label string
	// Scale is the pyramid step (default 1.1).
	Scale float64
	// MinNeighbors is how many overlapping hits make a detection (default
	// 3).
	MinNeighbors int
	// MinSize is the smallest object in pixels (default 24).
	MinSize int
	// NoEqualize skips histogram equalization of the gray image.
	NoEqualize bool
}

// Cascade is a Haar or LBP cascade classifier (OpenCV's Viola-Jones
// detector). Scores are the weight of the last stage (higher is surer).
type Cascade struct {
	o  CascadeOptions
	mu sync.Mutex
	c  C.chr_cascade
}

// NewCascade loads a cascade: a path, or a name of DataDirs such as
// HaarFrontalFace. Close it when done.
func NewCascade(file string, o CascadeOptions) (*Cascade, error) {
	if err := finite("cascade", o.Scale); err != nil {
		return nil, err
	}
	path, err := CascadeFile(file)
	if err != nil {
		return nil, err
	}
	if o.Scale <= 1 {
		o.Scale = 1.1
	}
	if o.MinNeighbors <= 0 {
		o.MinNeighbors = 3
	}
	if o.MinSize <= 0 {
		o.MinSize = 24
	}
	if o.Label == "" {
		o.Label = "object"
	}
	if o.Model == "" {
		o.Model = filepath.Base(path[:len(path)-len(filepath.Ext(path))])
	}
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	c := C.chr_cascade_load(cp)
	if c == nil {
		return nil, fmt.Errorf("cv: %s is not an OpenCV cascade", path)
	}
	d := &Cascade{o: o, c: c}
	runtime.SetFinalizer(d, (*Cascade).Close)
	return d, nil
}

// Name implements Detector.
func (d *Cascade) Name() string { return d.o.Model }

// Detect implements Detector.
func (d *Cascade) Detect(img *media.ChImage) ([]media.Detection, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c == nil {
		return nil, ErrClosed
	}
	ci, err := cimg(img)
	if err != nil {
		return nil, err
	}
	eq := 1
	if d.o.NoEqualize {
		eq = 0
	}
	r := C.chr_cascade_detect(d.c, ci, C.double(d.o.Scale), C.int(d.o.MinNeighbors), C.int(d.o.MinSize), C.int(eq))
	runtime.KeepAlive(img)
	return results(r, d.o.Label, nil)
}

// Close implements Detector. It is idempotent.
func (d *Cascade) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c != nil {
		C.chr_cascade_free(d.c)
		d.c = nil
	}
	return nil
}
