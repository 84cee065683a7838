package operator_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/goleak"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/operator"
)

// scene draws a w x h frame in format f: mid gray, plus a white square at
// (sx, sy) of side side when side > 0, plus uniform noise of +-noise.
func scene(f chrysalis.PixelFormat, w, h, sx, sy, side, noise int, rng *rand.Rand) []byte {
	bpp := f.BytesPerPixel()
	data := make([]byte, w*h*bpp)
	for y := range h {
		for x := range w {
			v := 128
			if side > 0 && x >= sx && x < sx+side && y >= sy && y < sy+side {
				v = 255
			}
			if noise > 0 {
				v = min(255, max(0, v+rng.IntN(2*noise+1)-noise))
			}
			for c := range bpp {
				data[(y*w+x)*bpp+c] = byte(v)
			}
		}
	}
	return data
}

func TestMotion(t *testing.T) {
	defer goleak.VerifyNone(t)
	const w, h = 320, 240
	for _, f := range []chrysalis.PixelFormat{chrysalis.BGR24, chrysalis.RGB24, chrysalis.GRAY8} {
		t.Run(f.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			var imgs []flow.Image
			add := func(data []byte) {
				imgs = append(imgs, &chrysalis.ChImage{Camera: "cam", Time: ms(len(imgs)), Width: w, Height: h,
					Stride: w * f.BytesPerPixel(), Format: f, Data: data})
			}
			for range 10 { // static scene with sensor noise
				add(scene(f, w, h, 0, 0, 0, 3, rng))
			}
			for range 5 { // a white square appears (frame 10) and stays
				add(scene(f, w, h, 100, 60, 100, 3, rng))
			}
			for range 5 { // it leaves (frame 15): within the 2 s debounce
				add(scene(f, w, h, 0, 0, 0, 3, rng))
			}
			for range 50 { // static for 2 s
				add(scene(f, w, h, 0, 0, 0, 0, nil))
			}
			add(scene(f, w, h, 10, 10, 120, 0, nil)) // frame 70: after the debounce
			m := &operator.Motion{}
			got, err := runOp(t, m, imgs)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || !got[0].Time.Equal(ms(10)) || !got[1].Time.Equal(ms(70)) {
				var ts []time.Duration
				for _, g := range got {
					ts = append(ts, g.Time.Sub(ms(0)))
				}
				t.Fatalf("triggers at %v, want frames 10 and 70", ts)
			}
			if m.Triggers() != 2 || m.Frames() != int64(len(imgs)) {
				t.Fatalf("counters: triggers %d frames %d", m.Triggers(), m.Frames())
			}
			if !released(imgs[0]) || !released(imgs[11]) || released(imgs[10]) {
				t.Fatal("non-trigger frames must be released, triggers passed")
			}
			t.Logf("%s: last score %.1f", f, m.LastScore())
		})
	}
	t.Run("static input never triggers", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		var imgs []flow.Image
		for i := range 100 {
			imgs = append(imgs, &chrysalis.ChImage{Camera: "cam", Time: ms(i), Width: w, Height: h, Stride: w * 3,
				Format: chrysalis.BGR24, Data: scene(chrysalis.BGR24, w, h, 50, 50, 60, 4, rng)})
		}
		m := &operator.Motion{}
		got, err := runOp(t, m, imgs)
		if err != nil || len(got) != 0 {
			t.Fatalf("static scene: %d triggers, %v", len(got), err)
		}
		if s := m.LastScore(); s <= 0 || s >= 8 {
			t.Fatalf("noise-only score %.2f, want in (0, 8)", s)
		}
		t.Logf("noise-only score %.2f", m.LastScore())
	})
}
