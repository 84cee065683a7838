// Package gocvwin connects Chrysalis images to OpenCV through GoCV
// (gocv.io/x/gocv v0.32.0, OpenCV 4.6): ToMat wraps an image as a
// gocv.Mat without copying, and Window is a flow sink that shows images in
// an OpenCV HighGUI window.
//
// It is a separate package because it needs OpenCV's development files
// (pkg-config opencv4) and cgo; everything else in Chrysalis builds
// without them.
package gocvwin

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"gocv.io/x/gocv"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/flow"
)

// layout returns img's Mat type and the bytes of pixels in one row, after
// checking that img.Data holds the image.
func layout(img *chrysalis.ChImage) (gocv.MatType, int, error) {
	var mt gocv.MatType
	switch img.Format {
	case chrysalis.BGR24, chrysalis.RGB24:
		mt = gocv.MatTypeCV8UC3
	case chrysalis.GRAY8:
		mt = gocv.MatTypeCV8UC1
	default:
		return 0, 0, fmt.Errorf("gocvwin: unsupported pixel format %v", img.Format)
	}
	if err := img.Check(); err != nil {
		return 0, 0, fmt.Errorf("gocvwin: %w", err)
	}
	return mt, img.Width * img.Format.BytesPerPixel(), nil
}

// ToMat returns img as a gocv.Mat: CV_8UC3 for BGR24 (OpenCV's native
// order) and RGB24 (channels stay in R, G, B order; convert with
// gocv.CvtColor if OpenCV should see BGR), CV_8UC1 for GRAY8.
//
// When rows are tightly packed (Stride == Width*bytes per pixel, which is
// how the client decodes them) the Mat does not copy: gocv v0.32.0's
// NewMatFromBytes builds a cv::Mat header over the Go slice itself and
// keeps a Go reference to it. The Mat therefore aliases img.Data:
//   - it is valid only until img is released: Close the Mat first;
//   - writing through the Mat modifies the image, which other branches may
//     share read-only: Clone the image first if you draw on the Mat, and
//     set Modified on the clone.
//
// (Like gocv itself, this relies on Go's garbage collector not moving heap
// memory while C++ holds the pointer.)
//
// Otherwise (padded rows) the pixels are copied into a Mat owned by
// OpenCV. Either way the caller must Close the Mat.
func ToMat(img *chrysalis.ChImage) (gocv.Mat, error) {
	mt, row, err := layout(img)
	if err != nil {
		return gocv.Mat{}, err
	}
	if img.Stride == row {
		return gocv.NewMatFromBytes(img.Height, img.Width, mt, img.Data[:img.Height*row])
	}
	return copyToMat(img, mt, row)
}

// ToMatCopy returns a Mat with its own copy of img's pixels (types as
// ToMat), independent of the image's lifetime. The caller must Close it.
func ToMatCopy(img *chrysalis.ChImage) (gocv.Mat, error) {
	mt, row, err := layout(img)
	if err != nil {
		return gocv.Mat{}, err
	}
	return copyToMat(img, mt, row)
}

func copyToMat(img *chrysalis.ChImage, mt gocv.MatType, row int) (gocv.Mat, error) {
	m := gocv.NewMatWithSize(img.Height, img.Width, mt)
	dst, err := m.DataPtrUint8() // a view of OpenCV's continuous buffer
	if err != nil {
		m.Close()
		return gocv.Mat{}, fmt.Errorf("gocvwin: %w", err)
	}
	for y := 0; y < img.Height; y++ {
		copy(dst[y*row:(y+1)*row], img.Data[y*img.Stride:y*img.Stride+row])
	}
	return m, nil
}

// WindowOptions configures Window. The zero value shows each image at its
// own size (1:1) and ends when Esc is pressed.
type WindowOptions struct {
	// Width and Height, when both are set, size the window (a resizable
	// one, OpenCV scales images to fit it). Default: the window is
	// autosized to the images, which show 1:1.
	Width, Height int
	// OnKey, if set, is called with each key pressed in the window (the
	// WaitKey code); returning true ends Run. Without it, Esc ends Run.
	OnKey func(key int) (stop bool)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// WindowSink is the sink returned by Window.
type WindowSink struct {
	name string
	o    WindowOptions
}

var _ flow.Sink = (*WindowSink)(nil)

// Window returns a sink that shows images in an OpenCV window titled name.
// Run does all HighGUI calls from one locked OS thread, as GUI toolkits
// require, and pumps the window's events (WaitKey(1)) after every image
// and every 30 ms while none arrives. Run ends, closing the window, when in
// closes, ctx ends (returning ctx.Err()), or the user closes the window or
// presses Esc (returning nil). Images are released right after they are
// shown (HighGUI copies them).
//
// With the Qt build of OpenCV (Debian's), a process can only talk to one X
// display during its life, and must not outlive it.
func Window(name string, o WindowOptions) *WindowSink {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &WindowSink{name: name, o: o}
}

// pumpEvery is how often Run lets the GUI handle events when no image
// arrives.
const pumpEvery = 30 * time.Millisecond

// Run implements flow.Sink.
func (s *WindowSink) Run(ctx context.Context, in <-chan flow.Image) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	w := gocv.NewWindow(s.name) // nests another LockOSThread, undone by Close
	defer w.Close()
	if s.o.Width > 0 && s.o.Height > 0 {
		w.ResizeWindow(s.o.Width, s.o.Height)
	} else {
		// gocv creates WINDOW_NORMAL windows, which scale the picture to
		// the window; autosize fits the window to the picture instead.
		w.SetWindowProperty(gocv.WindowPropertyAutosize, gocv.WindowAutosize)
	}
	tick := time.NewTicker(pumpEvery)
	defer tick.Stop()
	shown := false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case img, ok := <-in:
			if !ok {
				return nil
			}
			err := s.show(w, img)
			img.Release()
			if err != nil {
				return err
			}
			shown = true
		case <-tick.C:
		}
		if stop := s.key(w.WaitKey(1)); stop {
			return nil
		}
		// The property is only meaningful once the window showed a frame.
		if shown && w.GetWindowProperty(gocv.WindowPropertyVisible) < 1 {
			s.o.Logger.Debug("gocvwin: window closed by the user", "window", s.name)
			return nil
		}
	}
}

func (s *WindowSink) show(w *gocv.Window, img flow.Image) error {
	m, err := ToMat(img)
	if err != nil {
		return err
	}
	defer m.Close()
	if img.Format == chrysalis.RGB24 {
		bgr := gocv.NewMat()
		defer bgr.Close()
		gocv.CvtColor(m, &bgr, gocv.ColorBGRToRGB) // the same channel swap
		w.IMShow(bgr)
		return nil
	}
	w.IMShow(m)
	return nil
}

// key handles a WaitKey result and reports whether to stop.
func (s *WindowSink) key(k int) bool {
	if k < 0 {
		return false
	}
	if s.o.OnKey != nil {
		return s.o.OnKey(k)
	}
	return k&0xff == 27 // Esc
}
