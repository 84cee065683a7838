package operator_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/goleak"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
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
		m := operator.NewMotion(0)
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

// packetTimes lists the cache's packet times in [from, to].
func packetTimes(t *testing.T, c cache.Cache, cam string, from, to time.Time) []time.Time {
	t.Helper()
	pkts, err := c.Range(context.Background(), cam, cache.IDAt(from), cache.ID{MS: uint64(to.UnixMilli()), Seq: ^uint64(0)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for _, p := range pkts {
		out = append(out, p.ID.Time())
	}
	return out
}

func sameTimes(t *testing.T, got []flow.Image, want []time.Time) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d frames, want %d (%v .. %v)", len(got), len(want), want[0], want[len(want)-1])
	}
	for i := range got {
		if !got[i].Time.Equal(want[i]) {
			t.Fatalf("frame %d at %v, want %v", i, got[i].Time, want[i])
		}
	}
}

func triggers(times ...time.Time) []flow.Image {
	var out []flow.Image
	for _, tt := range times {
		out = append(out, frames("trigger", 1, tt, 0)[0])
	}
	return out
}

func TestWindowReplay(t *testing.T) {
	defer goleak.VerifyNone(t)
	mc := cache.NewMemory(cache.Retention{})
	defer mc.Close()
	testclip.Load(t, "clip720.mp4").Append(t, mc, "cam", t0, step)
	cl := chrysalis.New(mc, chrysalis.Options{})
	opts := chrysalis.CameraOptions{Format: chrysalis.GRAY8, Width: 320}
	pre, post := 200*time.Millisecond, 400*time.Millisecond

	t.Run("exact window", func(t *testing.T) {
		wr := operator.NewWindowReplay(cl, "cam", pre, post, opts)
		trig := triggers(ms(30))
		got, err := runOp(t, wr, trig)
		if err != nil {
			t.Fatal(err)
		}
		sameTimes(t, got, packetTimes(t, mc, "cam", ms(30).Add(-pre), ms(30).Add(post)))
		if !released(trig[0]) || wr.Triggers() != 1 || wr.Windows() != 1 || wr.Frames() != int64(len(got)) {
			t.Fatalf("trigger released %v; counters %d %d %d", released(trig[0]), wr.Triggers(), wr.Windows(), wr.Frames())
		}
		t.Logf("trigger at frame 30, pre %v post %v: %d frames (%v .. %v)", pre, post, len(got), got[0].Time, got[len(got)-1].Time)
	})
	t.Run("overlapping triggers merge", func(t *testing.T) {
		wr := operator.NewWindowReplay(cl, "cam", pre, post, opts)
		got, err := runOp(t, wr, triggers(ms(30), ms(35), ms(33), ms(80)))
		if err != nil {
			t.Fatal(err)
		}
		want := append(packetTimes(t, mc, "cam", ms(30).Add(-pre), ms(35).Add(post)),
			packetTimes(t, mc, "cam", ms(80).Add(-pre), ms(80).Add(post))...)
		sameTimes(t, got, want)
		t.Logf("4 triggers: %d windows, %d frames, no duplicates", wr.Windows(), len(got))
	})
	t.Run("start clamped to the cache", func(t *testing.T) {
		wr := operator.NewWindowReplay(cl, "cam", 10*time.Second, post, opts)
		got, err := runOp(t, wr, triggers(ms(3)))
		if err != nil {
			t.Fatal(err)
		}
		sameTimes(t, got, packetTimes(t, mc, "cam", ms(0), ms(3).Add(post)))
	})
}

// A trigger at "now" on a live camera: the replay waits for the cache to
// reach t+post, then yields exactly the cached frames of the window.
func TestWindowReplayLive(t *testing.T) {
	defer goleak.VerifyNone(t)
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{MaxAge: 10 * time.Second})
	defer mc.Close()
	defer clip.Live(t, mc, "live", 0).Stop()
	time.Sleep(600 * time.Millisecond) // some history for pre
	cl := chrysalis.New(mc, chrysalis.Options{})
	pre, post := 300*time.Millisecond, 500*time.Millisecond
	wr := &operator.WindowReplay{Client: cl, Camera: "live", Pre: pre, Post: post,
		Options: chrysalis.CameraOptions{Format: chrysalis.GRAY8, Width: 320}}
	tt := time.Now().Truncate(time.Millisecond)
	start := time.Now()
	got, err := runOp(t, wr, triggers(tt))
	if err != nil {
		t.Fatal(err)
	}
	waited := time.Since(start)
	sameTimes(t, got, packetTimes(t, mc, "live", tt.Add(-pre), tt.Add(post)))
	t.Logf("live trigger: %d frames over [t-%v, t+%v], returned after %v", len(got), pre, post, waited)
	if waited < post-50*time.Millisecond {
		t.Fatalf("returned after %v: did not wait for t+post", waited)
	}
}

func TestWindowReplayErrors(t *testing.T) {
	defer goleak.VerifyNone(t)
	_, err := runOp(t, &operator.WindowReplay{}, nil)
	if err == nil {
		t.Fatal("WindowReplay without a client: no error")
	}
	// A camera that never appears: the window is given up after MaxWait.
	cl := chrysalis.New(cache.NewMemory(cache.Retention{}), chrysalis.Options{})
	wr := &operator.WindowReplay{Client: cl, Camera: "ghost", MaxWait: 150 * time.Millisecond}
	got, err := runOp(t, wr, triggers(ms(0)))
	if err != nil || len(got) != 0 {
		t.Fatalf("missing camera: %d frames, %v", len(got), err)
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal("unexpected cancel")
	}
}
