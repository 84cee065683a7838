package sink

import (
	"fmt"
	"image"

	chrysalis "github.com/chryscloud/chrysalis-go"
)

// pixBuf turns packed ChImage pixels into an image.Image the standard
// encoders have fast paths for (*image.RGBA, *image.Gray), reusing one
// RGBA buffer between frames of the same size. Not safe for concurrent use.
type pixBuf struct {
	rgba *image.RGBA
}

// view returns img as an encoder-friendly image. GRAY8 is returned without
// copying (the result aliases img.Data); BGR24 and RGB24 are converted into
// the reused buffer, which stays valid until the next call.
func (b *pixBuf) view(img *chrysalis.ChImage) (image.Image, error) {
	w, h := img.Width, img.Height
	bpp := img.Format.BytesPerPixel()
	if w <= 0 || h <= 0 || bpp == 0 || img.Stride < w*bpp || len(img.Data) < (h-1)*img.Stride+w*bpp {
		return nil, fmt.Errorf("sink: bad image %dx%d %v stride %d, %d bytes", w, h, img.Format, img.Stride, len(img.Data))
	}
	r := image.Rect(0, 0, w, h)
	if img.Format == chrysalis.GRAY8 {
		return &image.Gray{Pix: img.Data, Stride: img.Stride, Rect: r}, nil
	}
	if b.rgba == nil || b.rgba.Rect != r {
		b.rgba = image.NewRGBA(r)
	}
	bgr := img.Format == chrysalis.BGR24
	for y := 0; y < h; y++ {
		packedToRGBA(b.rgba.Pix[y*b.rgba.Stride:y*b.rgba.Stride+4*w], img.Data[y*img.Stride:y*img.Stride+3*w], bgr)
	}
	return b.rgba, nil
}

// packedToRGBA converts one row of 3-byte pixels to opaque RGBA.
func packedToRGBA(dst, src []byte, bgr bool) {
	n := len(src) / 3
	dst = dst[:4*n]
	src = src[:3*n]
	if bgr {
		for i, j := 0, 0; i < len(src); i, j = i+3, j+4 {
			s := src[i : i+3 : i+3]
			d := dst[j : j+4 : j+4]
			d[0], d[1], d[2], d[3] = s[2], s[1], s[0], 0xff
		}
		return
	}
	for i, j := 0, 0; i < len(src); i, j = i+3, j+4 {
		s := src[i : i+3 : i+3]
		d := dst[j : j+4 : j+4]
		d[0], d[1], d[2], d[3] = s[0], s[1], s[2], 0xff
	}
}
