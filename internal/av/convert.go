package av

import (
	"errors"
	"fmt"
	"image"

	"github.com/asticode/go-astiav"

	"github.com/chryscloud/chrysalis-go/media"
)

// PixelFormat is the packed output format of a Converter (media's).
type PixelFormat = media.PixelFormat

// The formats, as in package media.
const (
	BGR24 = media.BGR24
	RGB24 = media.RGB24
	GRAY8 = media.GRAY8
)

func avPixFmt(p PixelFormat) astiav.PixelFormat {
	switch p {
	case BGR24:
		return astiav.PixelFormatBgr24
	case RGB24:
		return astiav.PixelFormatRgb24
	case GRAY8:
		return astiav.PixelFormatGray8
	}
	return astiav.PixelFormatNone
}

// scaleKey identifies a swscale configuration.
type scaleKey struct {
	srcW, srcH int
	srcFmt     astiav.PixelFormat
	dstW, dstH int
	dstFmt     astiav.PixelFormat
}

// Converter converts decoded frames to packed images, scaling and changing
// the pixel format in a single swscale pass. The zero value is ready to use;
// Close releases its FFmpeg resources. It caches its swscale context and
// destination frame between calls and rebuilds them when the source
// (resolution change mid-stream) or the target changes, so steady-state
// conversions do not allocate. It is not safe for concurrent use.
type Converter struct {
	sws *scaler
	key scaleKey
}

// Convert scales f to dstW x dstH (0, 0 keeps the source size; a single 0
// keeps the aspect ratio) in pixel format pf, and writes the tightly packed
// result (stride = w * pf.BytesPerPixel()) to dst, which is reused when its
// capacity suffices and grown otherwise. out is dst resliced (or
// reallocated) to exactly stride*h bytes; it is owned by the caller.
// Resizing uses bilinear filtering.
func (c *Converter) Convert(f *Frame, dstW, dstH int, pf PixelFormat, dst []byte) (out []byte, stride int, w int, h int, err error) {
	if f == nil || f.f == nil {
		return nil, 0, 0, 0, errors.New("av: convert: no frame")
	}
	bpp, avpf := pf.BytesPerPixel(), avPixFmt(pf)
	if bpp == 0 {
		return nil, 0, 0, 0, fmt.Errorf("av: convert: unsupported pixel format %v", pf)
	}
	src := f.f
	if w, h, err = targetSize(src.Width(), src.Height(), dstW, dstH); err != nil {
		return nil, 0, 0, 0, err
	}
	key := scaleKey{src.Width(), src.Height(), src.PixelFormat(), w, h, avpf}
	if c.sws == nil || c.key != key {
		if err := c.setup(key); err != nil {
			return nil, 0, 0, 0, err
		}
	}
	stride = w * bpp
	n := stride * h
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	out = dst[:n]
	// One pass, straight into the caller's buffer: no intermediate frame.
	if err := c.sws.scale(src, out, stride, h); err != nil {
		return nil, 0, 0, 0, err
	}
	return out, stride, w, h, nil
}

// FromPacked is Convert's reverse, for encoders: it converts (and scales)
// a packed image (h rows of stride bytes, w pixels of pf each) into dst, an
// allocated, writable frame whose size and pixel format (e.g. yuv420p) say
// what to produce. src is only read during the call. The same scaler
// serves both directions; a Converter keeps one configuration at a time.
func (c *Converter) FromPacked(src []byte, stride, w, h int, pf PixelFormat, dst *astiav.Frame) error {
	avpf := avPixFmt(pf)
	if avpf == astiav.PixelFormatNone || w <= 0 || h <= 0 || stride < w*pf.BytesPerPixel() {
		return fmt.Errorf("av: convert: bad packed image %dx%d %v stride %d", w, h, pf, stride)
	}
	if len(src) < (h-1)*stride+w*pf.BytesPerPixel() {
		return errors.New("av: convert: packed image shorter than its size")
	}
	key := scaleKey{w, h, avpf, dst.Width(), dst.Height(), dst.PixelFormat()}
	if c.sws == nil || c.key != key {
		if err := c.setup(key); err != nil {
			return err
		}
	}
	return c.sws.scalePacked(src, stride, h, dst)
}

// Packed converts a packed image into another packed image in one swscale
// pass: crop, scale and pixel format together. src holds srcH rows of
// srcStride bytes, srcW pixels of srcPF each; crop (in src pixels, empty
// for all of it) selects the region to convert, which is scaled to dstW x
// dstH (0s as in Convert, relative to the crop) in dstPF. The result is
// tightly packed into dst, reused when its capacity suffices; src is only
// read during the call.
func (c *Converter) Packed(src []byte, srcStride, srcW, srcH int, srcPF PixelFormat, crop image.Rectangle,
	dstW, dstH int, dstPF PixelFormat, dst []byte) (out []byte, stride, w, h int, err error) {
	sbpp, savpf := srcPF.BytesPerPixel(), avPixFmt(srcPF)
	dbpp, davpf := dstPF.BytesPerPixel(), avPixFmt(dstPF)
	switch {
	case sbpp == 0 || dbpp == 0:
		return nil, 0, 0, 0, fmt.Errorf("av: convert: unsupported pixel format %v -> %v", srcPF, dstPF)
	case srcW <= 0 || srcH <= 0 || srcStride < srcW*sbpp || len(src) < (srcH-1)*srcStride+srcW*sbpp:
		return nil, 0, 0, 0, fmt.Errorf("av: convert: bad packed image %dx%d %v stride %d, %d bytes", srcW, srcH, srcPF, srcStride, len(src))
	}
	full := image.Rect(0, 0, srcW, srcH)
	if crop.Empty() {
		crop = full
	}
	if !crop.In(full) {
		return nil, 0, 0, 0, fmt.Errorf("av: convert: crop %v outside the %dx%d image", crop, srcW, srcH)
	}
	if w, h, err = targetSize(crop.Dx(), crop.Dy(), dstW, dstH); err != nil {
		return nil, 0, 0, 0, err
	}
	key := scaleKey{crop.Dx(), crop.Dy(), savpf, w, h, davpf}
	if c.sws == nil || c.key != key {
		if err := c.setup(key); err != nil {
			return nil, 0, 0, 0, err
		}
	}
	stride = w * dbpp
	n := stride * h
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	out = dst[:n]
	off := crop.Min.Y*srcStride + crop.Min.X*sbpp
	if err := c.sws.scalePP(src[off:], srcStride, crop.Dy(), out, stride, h); err != nil {
		return nil, 0, 0, 0, err
	}
	return out, stride, w, h, nil
}

// targetSize resolves the requested output size against the source size.
func targetSize(srcW, srcH, dstW, dstH int) (int, int, error) {
	switch {
	case srcW <= 0 || srcH <= 0:
		return 0, 0, fmt.Errorf("av: convert: invalid source size %dx%d", srcW, srcH)
	case dstW < 0 || dstH < 0:
		return 0, 0, fmt.Errorf("av: convert: invalid target size %dx%d", dstW, dstH)
	case dstW == 0 && dstH == 0:
		return srcW, srcH, nil
	case dstW == 0:
		dstW = max(1, (srcW*dstH+srcH/2)/srcH)
	case dstH == 0:
		dstH = max(1, (srcH*dstW+srcW/2)/srcW)
	}
	return dstW, dstH, nil
}

// setup (re)creates the swscale context for k.
func (c *Converter) setup(k scaleKey) error {
	c.freeScaler()
	// Resizing: bilinear. Same size: swscale uses its unscaled fast paths
	// (e.g. SIMD yuv2rgb) when available; the flag then only picks the
	// chroma interpolation of the generic path, where fast bilinear is enough.
	flag := swsBilinear
	if k.srcW == k.dstW && k.srcH == k.dstH {
		flag = swsFastBilinear
	}
	sws, err := newScaler(k, flag)
	if err != nil {
		return err
	}
	c.sws, c.key = sws, k // owned by c, freed by freeScaler
	return nil
}

// freeScaler releases the swscale context.
func (c *Converter) freeScaler() {
	c.sws.free()
	c.sws = nil
	c.key = scaleKey{}
}

// Close releases the Converter's FFmpeg resources. It is idempotent and
// safe on a nil Converter; a closed Converter may be used again (it then
// re-allocates).
func (c *Converter) Close() error {
	if c == nil {
		return nil
	}
	c.freeScaler()
	return nil
}
