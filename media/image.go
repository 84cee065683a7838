package media

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// PixelFormat is the packed layout of ChImage.Data.
type PixelFormat int

// Pixel formats. BGR24 is the zero value and the default: what OpenCV
// expects.
const (
	// BGR24 is 3 bytes per pixel in B, G, R order (OpenCV's default).
	BGR24 PixelFormat = iota
	// RGB24 is 3 bytes per pixel in R, G, B order.
	RGB24
	// GRAY8 is 1 byte per pixel (luma).
	GRAY8
)

// String returns the format's name, e.g. "bgr24".
func (p PixelFormat) String() string {
	switch p {
	case BGR24:
		return "bgr24"
	case RGB24:
		return "rgb24"
	case GRAY8:
		return "gray8"
	}
	return fmt.Sprintf("PixelFormat(%d)", int(p))
}

// BytesPerPixel returns the size of one pixel, or 0 for an unknown format.
func (p PixelFormat) BytesPerPixel() int {
	switch p {
	case BGR24, RGB24:
		return 3
	case GRAY8:
		return 1
	}
	return 0
}

// ErrBadImage: a ChImage whose fields do not describe its Data (see
// ChImage.Check).
var ErrBadImage = errors.New("bad image")

// ChImage is one decoded frame of a camera.
//
// Ownership: the receiver of a ChImage may read it for as long as it likes;
// it must not modify Data when the image is shared (fan-out branches share
// one ChImage read-only). Call Clone to get a private, writable copy.
// Release is optional: it returns Data to a pool once every holder has
// released it (see Retain), so a steady-state pipeline allocates no new frame
// buffers; an image that is never released is simply garbage collected.
// After Release the image must not be used.
type ChImage struct {
	// Camera is the camera id.
	Camera string
	// Time is the frame's cache timestamp (UTC, millisecond precision).
	Time time.Time
	// ID is the cache entry id of the frame's packet; ID.MS is the
	// timestamp in UTC ms.
	ID ID
	// Width, Height and Stride (bytes per row) of Data.
	Width, Height, Stride int
	// Format is Data's pixel format.
	Format PixelFormat
	// Data holds Height rows of Stride bytes.
	Data []byte
	// Keyframe reports that the frame came from a keyframe packet.
	Keyframe bool
	// PictType is the decoder's picture type: "I", "P", "B" or "?".
	PictType string
	// PTS is the frame's presentation timestamp in the stream's time base.
	PTS int64
	// Packet is the encoded packet the frame was decoded from (its Data is
	// shared and read-only). Video sinks remux it when the frame is
	// untouched.
	Packet Packet
	// Modified marks an image whose pixels differ from the decoded packet
	// (a sink then re-encodes instead of remuxing). Set it after drawing on
	// a Clone.
	Modified bool
	// Detections are the results of the models that ran on this frame
	// (cv.Detect attaches them), one entry per model, in the order they
	// ran. Read-only like the pixels; see WithDetections.
	Detections []Detections

	refs   atomic.Int32 // extra holders beyond the first
	pool   *bufPool
	parent *ChImage // the image whose pixels a WithDetections view shares
}

// TimestampMS is the frame's cache timestamp in UTC milliseconds.
func (im *ChImage) TimestampMS() int64 { return int64(im.ID.MS) }

// Retain adds a holder: each Retain needs one more Release before the
// buffer returns to its pool.
func (im *ChImage) Retain() { im.refs.Add(1) }

// Release gives up one hold. The last Release returns Data to its pool.
// Releasing an image without a pool (a Clone, or one built by hand) is a
// no-op for the buffer.
func (im *ChImage) Release() {
	if im == nil {
		return
	}
	if im.refs.Add(-1) >= 0 {
		return
	}
	if im.pool != nil {
		im.pool.put(im.Data)
		im.pool = nil
	}
	im.Data = nil
	if p := im.parent; p != nil {
		im.parent = nil
		p.Release()
	}
}

// Clone returns a deep copy that the caller owns and may modify. The clone
// has no pool.
func (im *ChImage) Clone() *ChImage {
	c := &ChImage{
		Camera: im.Camera, Time: im.Time, ID: im.ID, Width: im.Width, Height: im.Height, Stride: im.Stride,
		Format: im.Format, Data: append([]byte(nil), im.Data...), Keyframe: im.Keyframe, PictType: im.PictType,
		PTS: im.PTS, Packet: im.Packet, Modified: im.Modified, Detections: cloneDetections(im.Detections),
	}
	return c
}

// Image returns an image.Image view of Data without copying: *image.Gray
// for GRAY8, otherwise a view whose At converts BGR/RGB to color.RGBA. The
// view aliases Data: it is valid until Release.
func (im *ChImage) Image() image.Image {
	r := image.Rect(0, 0, im.Width, im.Height)
	if im.Format == GRAY8 {
		return &image.Gray{Pix: im.Data, Stride: im.Stride, Rect: r}
	}
	return &packed3{pix: im.Data, stride: im.Stride, rect: r, bgr: im.Format == BGR24}
}

// packed3 is an image.Image over 3-byte BGR or RGB pixels.
type packed3 struct {
	pix    []byte
	stride int
	rect   image.Rectangle
	bgr    bool
}

func (p *packed3) ColorModel() color.Model { return color.RGBAModel }
func (p *packed3) Bounds() image.Rectangle { return p.rect }
func (p *packed3) At(x, y int) color.Color {
	if !(image.Point{x, y}.In(p.rect)) {
		return color.RGBA{}
	}
	i := y*p.stride + x*3
	if p.bgr {
		return color.RGBA{p.pix[i+2], p.pix[i+1], p.pix[i], 255}
	}
	return color.RGBA{p.pix[i], p.pix[i+1], p.pix[i+2], 255}
}

// Check reports whether the image's size, stride and format describe its
// Data: a known pixel format, positive size, a stride that holds a row, and
// Data long enough for every row. The error wraps ErrBadImage. Images from
// this package always pass; Check is for code that builds its own.
func (im *ChImage) Check() error {
	bpp := im.Format.BytesPerPixel()
	row := im.Width * bpp
	if bpp == 0 || im.Width <= 0 || im.Height <= 0 || im.Stride < row || len(im.Data) < (im.Height-1)*im.Stride+row {
		return fmt.Errorf("%w: %dx%d %v stride %d, %d bytes", ErrBadImage, im.Width, im.Height, im.Format, im.Stride, len(im.Data))
	}
	return nil
}

// ToRGBA converts to a new *image.RGBA (a copy), for encoders that are fast
// on RGBA.
func (im *ChImage) ToRGBA() *image.RGBA { return im.ToRGBAInto(nil) }

// ToRGBAInto converts into dst when it has the image's size (dst is reused,
// e.g. one buffer per encoder), else into a new *image.RGBA, and returns
// the result.
func (im *ChImage) ToRGBAInto(dst *image.RGBA) *image.RGBA {
	r := image.Rect(0, 0, im.Width, im.Height)
	if dst == nil || dst.Rect != r {
		dst = image.NewRGBA(r)
	}
	for y := 0; y < im.Height; y++ {
		d := dst.Pix[y*dst.Stride : y*dst.Stride+4*im.Width]
		switch im.Format {
		case GRAY8:
			src := im.Data[y*im.Stride : y*im.Stride+im.Width]
			for x, g := range src {
				d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = g, g, g, 0xff
			}
		case RGB24:
			src := im.Data[y*im.Stride : y*im.Stride+3*im.Width]
			for i, j := 0, 0; i < len(src); i, j = i+3, j+4 {
				d[j], d[j+1], d[j+2], d[j+3] = src[i], src[i+1], src[i+2], 0xff
			}
		default: // BGR24
			src := im.Data[y*im.Stride : y*im.Stride+3*im.Width]
			for i, j := 0, 0; i < len(src); i, j = i+3, j+4 {
				d[j], d[j+1], d[j+2], d[j+3] = src[i+2], src[i+1], src[i], 0xff
			}
		}
	}
	return dst
}

// bufPool recycles frame buffers: a small bounded free list rather than a
// sync.Pool, because a GC empties a sync.Pool and a live pipeline would
// then allocate a fresh multi-megabyte frame buffer. The list is trimmed to
// the working set: buffers that stayed free for a whole window of
// trimEvery gets were not needed and are let go, so a one-off burst (a
// stalled sink, a long replay) does not pin its peak for the rest of the
// run.
type bufPool struct {
	mu   sync.Mutex
	bufs [][]byte
	gets int // in the current window
	low  int // fewest free buffers seen in the current window
}

const (
	// maxPooled bounds the free list: a graph rarely holds more frames
	// than its edge buffers.
	maxPooled = 16
	// trimEvery is the trim window in gets (10 s of a 25 fps camera).
	trimEvery = 250
)

func (b *bufPool) get(n int) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gets++; b.gets > trimEvery {
		// The oldest b.low buffers were free throughout the window.
		b.bufs = slices.Delete(b.bufs, 0, b.low)
		b.gets, b.low = 1, len(b.bufs)
	}
	var buf []byte
	for i := len(b.bufs) - 1; i >= 0; i-- {
		if cap(b.bufs[i]) >= n {
			buf = b.bufs[i][:n]
			b.bufs = slices.Delete(b.bufs, i, i+1)
			break
		}
	}
	b.low = min(b.low, len(b.bufs))
	if buf == nil {
		buf = make([]byte, n)
	}
	return buf
}

func (b *bufPool) put(buf []byte) {
	if cap(buf) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.bufs) < maxPooled {
		b.bufs = append(b.bufs, buf)
	}
}

// ImagePool recycles pixel buffers for code that builds its own images (a
// custom source, a decoder of its own), so that it too allocates no new
// frame buffers in steady state. The zero value is ready; it is safe for
// concurrent use.
type ImagePool struct{ p bufPool }

// Buffer returns a buffer of n bytes, from the pool when one is big enough.
func (ip *ImagePool) Buffer(n int) []byte { return ip.p.get(n) }

// Attach makes img's last Release return img.Data to the pool. Attach an
// image before it is shared.
func (ip *ImagePool) Attach(img *ChImage) { img.pool = &ip.p }

// Put returns a buffer that never made it into an image (e.g. a failed
// conversion).
func (ip *ImagePool) Put(buf []byte) { ip.p.put(buf) }

// Clone is ChImage.Clone into a buffer of the pool: a deep, writable copy
// (metadata and detections included) whose last Release returns its
// buffer here.
func (ip *ImagePool) Clone(im *ChImage) *ChImage {
	c := &ChImage{
		Camera: im.Camera, Time: im.Time, ID: im.ID, Width: im.Width, Height: im.Height, Stride: im.Stride,
		Format: im.Format, Keyframe: im.Keyframe, PictType: im.PictType,
		PTS: im.PTS, Packet: im.Packet, Modified: im.Modified, Detections: cloneDetections(im.Detections),
	}
	c.Data = ip.Buffer(len(im.Data))
	copy(c.Data, im.Data)
	ip.Attach(c)
	return c
}
