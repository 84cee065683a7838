package sink

import (
	"image/jpeg"
	"io"
	"testing"

	chrysalis "github.com/chryscloud/chrysalis-go"
)

func testImage(w, h int, pf chrysalis.PixelFormat) *chrysalis.ChImage {
	bpp := pf.BytesPerPixel()
	img := &chrysalis.ChImage{Width: w, Height: h, Stride: w*bpp + 5, Format: pf}
	img.Data = make([]byte, img.Stride*h)
	for i := range img.Data {
		img.Data[i] = byte(i * 7)
	}
	return img
}

func TestPixBufView(t *testing.T) {
	for _, pf := range []chrysalis.PixelFormat{chrysalis.BGR24, chrysalis.RGB24, chrysalis.GRAY8} {
		img := testImage(33, 17, pf)
		var px pixBuf
		m, err := px.view(img)
		if err != nil {
			t.Fatal(err)
		}
		ref := img.Image() // the per-pixel view, as the reference
		for y := 0; y < 17; y++ {
			for x := 0; x < 33; x++ {
				r1, g1, b1, a1 := m.At(x, y).RGBA()
				r2, g2, b2, a2 := ref.At(x, y).RGBA()
				if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
					t.Fatalf("%v (%d,%d): %v vs %v", pf, x, y, m.At(x, y), ref.At(x, y))
				}
			}
		}
	}
	var px pixBuf
	if _, err := px.view(&chrysalis.ChImage{Width: 4, Height: 4, Stride: 12, Data: make([]byte, 10)}); err == nil {
		t.Fatal("short buffer accepted")
	}
}

// BenchmarkJPEG720 compares encoding a 1280x720 BGR24 frame through the
// reused RGBA buffer (what the sinks do) with the per-pixel image.Image
// view.
func BenchmarkJPEG720(b *testing.B) {
	img := testImage(1280, 720, chrysalis.BGR24)
	b.Run("rgba-buffer", func(b *testing.B) {
		var px pixBuf
		for b.Loop() {
			m, _ := px.view(img)
			jpeg.Encode(io.Discard, m, &jpeg.Options{Quality: 90})
		}
	})
	b.Run("per-pixel-view", func(b *testing.B) {
		for b.Loop() {
			jpeg.Encode(io.Discard, img.Image(), &jpeg.Options{Quality: 90})
		}
	})
}
