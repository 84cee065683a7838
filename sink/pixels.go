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
	if err := img.Check(); err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	r := image.Rect(0, 0, img.Width, img.Height)
	if img.Format == chrysalis.GRAY8 {
		return &image.Gray{Pix: img.Data, Stride: img.Stride, Rect: r}, nil
	}
	b.rgba = img.ToRGBAInto(b.rgba)
	return b.rgba, nil
}
