// Package convert has the pixel operators of a graph branch: Resize, Crop
// and Gray (and any mix of them, Op), each done in one swscale pass from
// the incoming packed image into a pooled buffer.
//
// They are not in package operator because they need FFmpeg's swscale
// (cgo), which package operator does without; and not in package cv
// because they need no OpenCV: a branch that only wants a small gray image
// builds without OpenCV's development files.
//
// A frame the camera decodes once is shared read-only by every branch; the
// operator never writes to it: it converts into a new image (Modified, from
// its own ImagePool, with the input's metadata and detections) and releases
// the input. When every consumer of a camera wants the same size and
// format, ask the decoder instead (chrysalis.CameraOptions Width, Height,
// Format): that conversion is free, done in the decoder's own swscale
// pass.
package convert

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/av"
	"github.com/chryscloud/chrysalis-go/media"
)

// ErrBadSize is returned (wrapped) by Run for a negative size, or an
// output side longer than MaxSide.
var ErrBadSize = errors.New("convert: bad size")

// MaxSide bounds the output's width and height (also when one of them
// follows from the aspect ratio), so a typo cannot allocate gigabytes.
const MaxSide = 8192

// Op converts every image: crop, then scale, then change the pixel format,
// in one swscale pass. The zero value passes images through unchanged
// (converted copies). Configure it before Run; it is a flow.Operator.
type Op struct {
	// Crop is the region to keep, in the input's pixels; empty keeps the
	// whole image. A crop reaching past an image's edge is clipped to it;
	// one that leaves nothing drops the image (counted in Dropped, and
	// logged at Warn with the count: at the first drop, then at most every
	// 10 s).
	Crop image.Rectangle
	// Width and Height of the output: 0, 0 keeps the (cropped) size; a
	// single 0 keeps the aspect ratio.
	Width, Height int
	// Format is the output's pixel format; Keep (the default) keeps the
	// input's.
	Format Format
	// Logger (for the drop warnings) defaults to slog.Default().
	Logger *slog.Logger

	pool     media.ImagePool
	dropped  atomic.Int64
	lastWarn time.Time // Run's goroutine only
}

// Format selects an output pixel format, Keep for the input's.
type Format int

// Output formats.
const (
	Keep Format = iota
	BGR24
	RGB24
	GRAY8
)

var _ flow.Operator = (*Op)(nil)

// Resize returns an operator scaling images to w x h (a 0 keeps the
// aspect ratio).
func Resize(w, h int) *Op { return &Op{Width: w, Height: h} }

// Crop returns an operator keeping region r of every image.
func Crop(r image.Rectangle) *Op { return &Op{Crop: r} }

// Gray returns an operator converting images to GRAY8 (size kept).
func Gray() *Op { return &Op{Format: GRAY8} }

// Dropped counts images dropped because the crop left nothing of them.
func (o *Op) Dropped() int64 { return o.dropped.Load() }

func (o *Op) format(in media.PixelFormat) media.PixelFormat {
	switch o.Format {
	case BGR24:
		return media.BGR24
	case RGB24:
		return media.RGB24
	case GRAY8:
		return media.GRAY8
	}
	return in
}

// Run implements flow.Operator.
func (o *Op) Run(ctx context.Context, in <-chan flow.Image, out chan<- flow.Image) error {
	if o.Width < 0 || o.Height < 0 || o.Width > MaxSide || o.Height > MaxSide {
		return fmt.Errorf("%w: %dx%d (at most %d a side)", ErrBadSize, o.Width, o.Height, MaxSide)
	}
	if o.Format < Keep || o.Format > GRAY8 {
		return fmt.Errorf("convert: unknown format %d", o.Format)
	}
	var conv av.Converter
	defer conv.Close()
	for {
		img, ok, err := flow.Recv(ctx, in)
		if err != nil || !ok {
			return err
		}
		res, err := o.convert(&conv, img)
		if err == nil && res == nil {
			o.drop(img)
		}
		img.Release()
		if err != nil {
			return err
		}
		if res == nil {
			continue
		}
		if err := flow.Send(ctx, out, res); err != nil {
			return err
		}
	}
}

// convert converts one image with conv into a new image from o's pool, or
// returns nil when the crop leaves nothing of it. img is only read.
// drop counts an image whose crop left nothing, and warns: at the first
// drop, then at most every 10 s.
func (o *Op) drop(img *media.ChImage) {
	n := o.dropped.Add(1)
	if now := time.Now(); n == 1 || now.Sub(o.lastWarn) >= 10*time.Second {
		o.lastWarn = now
		log := o.Logger
		if log == nil {
			log = slog.Default()
		}
		log.Warn("convert: the crop misses the image; dropping it", "crop", o.Crop, "width", img.Width,
			"height", img.Height, "camera", img.Camera, "dropped", n)
	}
}

func (o *Op) convert(conv *av.Converter, img *media.ChImage) (*media.ChImage, error) {
	if err := img.Check(); err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	crop := image.Rect(0, 0, img.Width, img.Height)
	if !o.Crop.Empty() {
		crop = o.Crop.Intersect(crop)
		if crop.Empty() {
			return nil, nil
		}
	}
	pf := o.format(img.Format)
	w, h := outDims(crop, o.Width, o.Height)
	if w > MaxSide || h > MaxSide {
		return nil, fmt.Errorf("%w: %v of a %dx%d image to %dx%d (at most %d a side)", ErrBadSize, crop, img.Width, img.Height, w, h, MaxSide)
	}
	buf := o.pool.Buffer(w * h * pf.BytesPerPixel())
	data, stride, w, h, err := conv.Packed(img.Data, img.Stride, img.Width, img.Height, img.Format, crop, w, h, pf, buf)
	if err != nil {
		o.pool.Put(buf)
		return nil, fmt.Errorf("convert: %w", err)
	}
	res := &media.ChImage{
		Camera: img.Camera, Time: img.Time, ID: img.ID, Keyframe: img.Keyframe, PictType: img.PictType, PTS: img.PTS,
		Packet: img.Packet, Width: w, Height: h, Stride: stride, Format: pf, Data: data,
		Modified:   true, // no longer the packet's pixels
		Detections: mapDetections(img.Detections, img.Width, img.Height, crop, w, h),
	}
	o.pool.Attach(res)
	return res, nil
}

// outDims is the output size (as av's Converter resolves it).
func outDims(crop image.Rectangle, w, h int) (int, int) {
	cw, ch := crop.Dx(), crop.Dy()
	switch {
	case w == 0 && h == 0:
		w, h = cw, ch
	case w == 0:
		w = max(1, (cw*h+ch/2)/ch)
	case h == 0:
		h = max(1, (ch*w+cw/2)/cw)
	}
	return w, h
}

// mapDetections maps detections on a srcW x srcH image to the w x h image
// made of its crop region: boxes are moved, clipped to the crop and scaled;
// those left empty are dropped.
func mapDetections(ds []media.Detections, srcW, srcH int, crop image.Rectangle, w, h int) []media.Detections {
	if ds == nil {
		return nil
	}
	out := make([]media.Detections, len(ds))
	for i, d := range ds {
		d = d.ScaledTo(srcW, srcH)
		m := d
		m.Width, m.Height, m.Objects = w, h, nil
		for _, ob := range d.Objects {
			b := ob.Box.Intersect(crop).Sub(crop.Min)
			if b.Empty() {
				continue
			}
			ob.Box = image.Rect(b.Min.X*w/crop.Dx(), b.Min.Y*h/crop.Dy(), b.Max.X*w/crop.Dx(), b.Max.Y*h/crop.Dy())
			m.Objects = append(m.Objects, ob)
		}
		out[i] = m
	}
	return out
}
