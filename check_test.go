package chrysalis_test

import (
	"errors"
	"testing"

	chrysalis "github.com/chryscloud/chrysalis-go"
)

func TestChImageCheck(t *testing.T) {
	good := func() *chrysalis.ChImage {
		return &chrysalis.ChImage{Width: 4, Height: 2, Stride: 12, Format: chrysalis.BGR24, Data: make([]byte, 24)}
	}
	if err := good().Check(); err != nil {
		t.Fatalf("a well-formed image: %v", err)
	}
	padded := good()
	padded.Stride, padded.Data = 16, make([]byte, 16+12) // the last row needs no padding
	if err := padded.Check(); err != nil {
		t.Fatalf("padded rows: %v", err)
	}
	for name, mut := range map[string]func(*chrysalis.ChImage){
		"short data":   func(im *chrysalis.ChImage) { im.Data = im.Data[:23] },
		"small stride": func(im *chrysalis.ChImage) { im.Stride = 11 },
		"zero width":   func(im *chrysalis.ChImage) { im.Width = 0 },
		"bad format":   func(im *chrysalis.ChImage) { im.Format = chrysalis.PixelFormat(99) },
	} {
		im := good()
		mut(im)
		if err := im.Check(); !errors.Is(err, chrysalis.ErrBadImage) {
			t.Errorf("%s: %v, want ErrBadImage", name, err)
		}
	}
}
