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
	b.rgba = img.ToRGBAInto(b.rgba)
	return b.rgba, nil
}
