package cv

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"

	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/media"
	"github.com/chryscloud/chrysalis-go/sink/gocvwin"
)

// DetectOp runs a Detector on every image and sends the image on with the
// result attached (img.Detections gains one media.Detections). It never
// writes to the incoming image, which fan-out branches share: it sends a
// new header over the same pixels (media.ChImage.WithDetections).
//
// A model slower than the camera should sit behind a throttle and a
// drop-oldest edge of one image, so it always gets the newest frame and
// never holds the camera back.
type DetectOp struct {
	// Detector is the model. Required. The operator does not close it.
	Detector Detector

	frames, objects, latNs, lastNs atomic.Int64
}

var _ flow.Operator = (*DetectOp)(nil)

// Detect returns an operator running d on every image.
func Detect(d Detector) *DetectOp { return &DetectOp{Detector: d} }

// DetectStats are a DetectOp's counters.
type DetectStats struct {
	// Frames the model ran on, and Objects it found in them.
	Frames, Objects int64
	// Latency is the mean time the model took per frame, Last the latest.
	Latency, Last time.Duration
}

// Stats returns the counters; safe while Run runs.
func (o *DetectOp) Stats() DetectStats {
	s := DetectStats{Frames: o.frames.Load(), Objects: o.objects.Load(), Last: time.Duration(o.lastNs.Load())}
	if s.Frames > 0 {
		s.Latency = time.Duration(o.latNs.Load() / s.Frames)
	}
	return s
}

// Run implements flow.Operator. A detector error stops it (and the graph).
func (o *DetectOp) Run(ctx context.Context, in <-chan flow.Image, out chan<- flow.Image) error {
	if o.Detector == nil {
		return errors.New("cv: DetectOp needs a Detector")
	}
	name := o.Detector.Name()
	for {
		img, ok, err := flow.Recv(ctx, in)
		if err != nil || !ok {
			return err
		}
		start := time.Now()
		objs, err := o.Detector.Detect(img)
		lat := time.Since(start)
		if err != nil {
			img.Release()
			return fmt.Errorf("cv: %s on frame %s of %s: %w", name, img.ID, img.Camera, err)
		}
		o.frames.Add(1)
		o.objects.Add(int64(len(objs)))
		o.latNs.Add(int64(lat))
		o.lastNs.Store(int64(lat))
		res := img.WithDetections(media.Detections{Model: name, Latency: lat, Width: img.Width, Height: img.Height, Objects: objs})
		if err := flow.Send(ctx, out, res); err != nil {
			return err
		}
	}
}

// AnnotateOp draws the attached detections on a copy of each image (from
// its pool) and sends the copy, Modified, on. Images with no box pass
// untouched (not copied).
type AnnotateOp struct {
	// Thickness of the boxes in pixels. Default 2.
	Thickness int
	// NoLabels skips the "label score" text above each box.
	NoLabels bool

	pool media.ImagePool
}

var _ flow.Operator = (*AnnotateOp)(nil)

// Annotate returns an operator drawing detections.
func Annotate() *AnnotateOp { return &AnnotateOp{} }

// palette colours each model's boxes (R, G, B), by attachment order.
var palette = []color.RGBA{{0, 255, 0, 255}, {255, 64, 64, 255}, {64, 160, 255, 255}, {255, 220, 0, 255}, {255, 0, 255, 255}}

// Run implements flow.Operator.
func (a *AnnotateOp) Run(ctx context.Context, in <-chan flow.Image, out chan<- flow.Image) error {
	for {
		img, ok, err := flow.Recv(ctx, in)
		if err != nil || !ok {
			return err
		}
		if hasObjects(img) {
			c, err := a.Draw(img)
			img.Release()
			if err != nil {
				return err
			}
			img = c
		}
		if err := flow.Send(ctx, out, img); err != nil {
			return err
		}
	}
}

func hasObjects(img *media.ChImage) bool {
	for _, d := range img.Detections {
		if len(d.Objects) > 0 {
			return true
		}
	}
	return false
}

// Draw returns a copy of img (from a's pool; the caller releases it) with
// its detections drawn, Modified. img is only read.
func (a *AnnotateOp) Draw(img *media.ChImage) (*media.ChImage, error) {
	if err := img.Check(); err != nil {
		return nil, fmt.Errorf("cv: annotate: %w", err)
	}
	c := a.pool.Clone(img)
	c.Modified = true
	m, err := gocvwin.ToMat(c) // aliases c.Data: drawing writes the copy
	if err != nil {
		c.Release()
		return nil, fmt.Errorf("cv: annotate: %w", err)
	}
	defer m.Close()
	th := a.Thickness
	if th <= 0 {
		th = 2
	}
	for i, d := range img.Detections {
		col := palette[i%len(palette)]
		if c.Format == media.RGB24 { // gocv writes (B, G, R) into channels 0, 1, 2
			col.R, col.B = col.B, col.R
		}
		for _, ob := range d.ScaledTo(c.Width, c.Height).Objects {
			gocv.Rectangle(&m, ob.Box, col, th)
			if !a.NoLabels {
				at := image.Pt(ob.Box.Min.X, max(ob.Box.Min.Y-4, 12))
				gocv.PutText(&m, fmt.Sprintf("%s %.2f", ob.Label, ob.Score), at, gocv.FontHersheySimplex, 0.45, col, 1)
			}
		}
	}
	return c, nil
}
