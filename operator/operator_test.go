package operator_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/operator"
	"github.com/chryscloud/chrysalis-go/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Frames 40 ms apart fed as fast as possible: the rate is capped by frame
// time, so 10 s of frames through Throttle(5) is 50 frames.
func TestThrottle(t *testing.T) {
	start := ms(0)
	for _, tc := range []struct {
		name string
		fps  float64
		want int
	}{
		{"5 fps of 25", 5, 50},
		{"7 fps of 25 (not a divisor)", 7, 70},
		{"12.5 fps of 25", 12.5, 125},
		{"25 fps of 25", 25, 250},
		{"60 fps of 25", 60, 250},
		{"unlimited", 0, 250},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			imgs := frames("cam", 250, start, 40*time.Millisecond) // 10 s
			th := operator.Throttle(tc.fps)
			got, err := runOp(t, th, imgs)
			if err != nil {
				t.Fatal(err)
			}
			if d := len(got) - tc.want; d < -1 || d > 1 {
				t.Fatalf("%d frames passed, want %d ± 1", len(got), tc.want)
			}
			if th.Dropped()+int64(len(got)) != 250 {
				t.Fatalf("dropped %d + passed %d != 250", th.Dropped(), len(got))
			}
			n := 0
			for _, img := range imgs {
				if released(img) {
					n++
				}
			}
			if n != int(th.Dropped()) {
				t.Fatalf("%d images released, %d dropped", n, th.Dropped())
			}
			t.Logf("fps %.1f: passed %d, dropped %d", tc.fps, len(got), th.Dropped())
		})
	}
	t.Run("per camera, gap and new timeline", func(t *testing.T) {
		a := frames("a", 50, start, 40*time.Millisecond) // 2 s
		b := frames("b", 50, start, 40*time.Millisecond)
		var mixed []flow.Image
		for i := range a {
			mixed = append(mixed, a[i], b[i])
		}
		// Camera a after a 10 s gap, then restarted at an earlier time (a loop).
		mixed = append(mixed, frames("a", 25, start.Add(12*time.Second), 40*time.Millisecond)...)
		mixed = append(mixed, frames("a", 25, start, 40*time.Millisecond)...)
		got, err := runOp(t, operator.Throttle(5), mixed)
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, img := range got {
			count[img.Camera]++
		}
		// a: 10 + 5 + 5; b: 10.
		if count["a"] != 20 || count["b"] != 10 {
			t.Fatalf("per-camera counts %v, want a:20 b:10", count)
		}
	})
}

// A 10 s replay from the cache (clip720 appended 2.5 times) through
// Throttle(5), sent as fast as it is consumed.
func TestThrottleReplay(t *testing.T) {
	defer goleak.VerifyNone(t)
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{})
	defer mc.Close()
	half := *clip
	half.Packets = clip.Packets[:50] // one whole GOP
	clip.Append(t, mc, "cam", t0, step)
	clip.Append(t, mc, "cam", testclip.MS(t0, 100, step), step)
	half.Append(t, mc, "cam", testclip.MS(t0, 200, step), step)
	cl := chrysalis.New(mc, chrysalis.Options{})
	src := source.Replay(cl, "cam", ms(0), ms(249), chrysalis.CameraOptions{Format: chrysalis.GRAY8, Width: 320}, false)
	th := operator.Throttle(5)
	ctx := context.Background()
	a, b := make(chan flow.Image), make(chan flow.Image)
	errc := make(chan error, 2)
	go func() { defer close(a); errc <- src.Run(ctx, a) }()
	go func() { defer close(b); errc <- th.Run(ctx, a, b) }()
	var times []time.Time
	for img := range b {
		times = append(times, img.Time)
		img.Release()
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("replay of %d frames (%v of frame time) through Throttle(5): %d passed, %d dropped",
		src.Emitted(), ms(249).Sub(ms(0)), len(times), th.Dropped())
	if src.Emitted() != 250 {
		t.Fatalf("replay emitted %d frames, want 250", src.Emitted())
	}
	if d := len(times) - 50; d < -1 || d > 1 {
		t.Fatalf("%d frames passed, want 50 ± 1", len(times))
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap != 200*time.Millisecond {
			t.Fatalf("gap %v between passed frames %d and %d, want 200ms", gap, i-1, i)
		}
	}
}

func TestDropStaleMaxAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ds := &operator.DropStale{MaxAge: 200 * time.Millisecond}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		in, out := make(chan flow.Image), make(chan flow.Image)
		errc := make(chan error, 1)
		go func() { errc <- ds.Run(ctx, in, out) }()
		now := time.Now()
		old := frames("cam", 1, now.Add(-300*time.Millisecond), 0)[0]
		fresh := frames("cam", 1, now.Add(-100*time.Millisecond), 0)[0]
		in <- old
		in <- fresh
		// fresh ages while nobody reads out: 100 ms later it is handed over
		// at 200 ms of age at most.
		time.Sleep(50 * time.Millisecond)
		if got := <-out; got != fresh {
			t.Fatal("did not get the fresh frame")
		}
		if !released(old) || ds.Stale() != 1 {
			t.Fatalf("old frame: released %v, stale count %d", released(old), ds.Stale())
		}
		// A frame that expires while waiting for the consumer is dropped.
		late := frames("cam", 1, time.Now().Add(-150*time.Millisecond), 0)[0]
		in <- late
		time.Sleep(time.Second)
		synctest.Wait()
		if ds.Stale() != 2 || !released(late) {
			t.Fatalf("frame expired while waiting: stale %d, released %v", ds.Stale(), released(late))
		}
		select {
		case img := <-out:
			t.Fatalf("got an expired frame %v", img.Time)
		default:
		}
		close(in)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	})
}

func TestDropStaleKeepNewest(t *testing.T) {
	defer goleak.VerifyNone(t)
	imgs := frames("cam", 5, ms(0), 40*time.Millisecond)
	in, out := make(chan flow.Image, len(imgs)), make(chan flow.Image)
	for _, img := range imgs {
		in <- img
	}
	close(in)
	ds := &operator.DropStale{KeepNewest: true}
	errc := make(chan error, 1)
	go func() { defer close(out); errc <- ds.Run(context.Background(), in, out) }()
	var got []flow.Image
	for img := range out {
		got = append(got, img)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != imgs[4] || ds.Superseded() != 4 {
		t.Fatalf("got %d frames (superseded %d), want only the newest", len(got), ds.Superseded())
	}
	for _, img := range imgs[:4] {
		if !released(img) {
			t.Fatal("superseded frame not released")
		}
	}
	// Without KeepNewest every frame passes, in order.
	imgs = frames("cam", 5, ms(0), 40*time.Millisecond)
	got, err := runOp(t, &operator.DropStale{}, imgs)
	if err != nil || len(got) != 5 {
		t.Fatalf("plain DropStale: %d frames, %v", len(got), err)
	}
}

// Live source on a 25 fps camera, DropStale{KeepNewest} in front of a
// consumer taking 200 ms per frame: the consumer's frames stay fresh.
func TestDropStaleSlowConsumer(t *testing.T) {
	defer goleak.VerifyNone(t)
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{MaxAge: 10 * time.Second})
	defer mc.Close()
	defer clip.Live(t, mc, "live", 0).Stop()
	cl := chrysalis.New(mc, chrysalis.Options{})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	live := source.Live(cl, "live", chrysalis.CameraOptions{})
	ds := &operator.DropStale{MaxAge: time.Second, KeepNewest: true}
	a, b, c := make(chan flow.Image), make(chan flow.Image), make(chan flow.Image)
	var srcAges []time.Duration // source latency: decode and conversion
	errc := make(chan error, 3)
	go func() { defer close(a); errc <- live.Run(ctx, a) }()
	go func() { // a tap measuring how old frames leave the source
		defer close(b)
		for img := range a {
			srcAges = append(srcAges, time.Since(img.Time))
			if flow.Send(ctx, b, img) != nil {
				break
			}
		}
		errc <- nil
	}()
	go func() { defer close(c); errc <- ds.Run(ctx, b, c) }()

	var ages []time.Duration
	var last time.Time
	deadline := time.Now().Add(4 * time.Second)
	for img := range c {
		ages = append(ages, time.Since(img.Time))
		if !img.Time.After(last) {
			t.Fatalf("frame %v not newer than %v", img.Time, last)
		}
		last = img.Time
		img.Release()
		if time.Now().After(deadline) {
			cancel()
			continue
		}
		time.Sleep(200 * time.Millisecond) // the slow model
	}
	for range 3 {
		if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	}
	interval := 40 * time.Millisecond
	p50, p99 := percentile(ages, 0.5), percentile(ages, 0.99)
	proc := percentile(srcAges, 0.99)
	t.Logf("200 ms/frame consumer on 25 fps live: %d frames; age p50 %v p99 %v; source latency p50 %v p99 %v; "+
		"source emitted %d, DropStale superseded %d stale %d; camera %+v",
		len(ages), p50, p99, percentile(srcAges, 0.5), proc, live.Emitted(), ds.Superseded(), ds.Stale(), live.CameraStats())
	if len(ages) < 10 {
		t.Fatalf("only %d frames in 4 s", len(ages))
	}
	if limit := 2*interval + proc; p99 > limit {
		t.Fatalf("frame age p99 %v > 2 frame intervals + source latency p99 (%v)", p99, limit)
	}
}

func TestKeyframesOnlyMapFilter(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Run("keyframes only", func(t *testing.T) {
		imgs := frames("cam", 30, ms(0), 40*time.Millisecond) // keyframes 0, 10, 20
		kf := operator.KeyframesOnly()
		got, err := runOp(t, kf, imgs)
		if err != nil || len(got) != 3 || !got[1].Time.Equal(ms(10)) || kf.Dropped() != 27 {
			t.Fatalf("keyframes only: %d images, dropped %d, %v", len(got), kf.Dropped(), err)
		}
		if !released(imgs[1]) || released(imgs[10]) {
			t.Fatal("dropped images must be released, passed ones not")
		}
	})
	t.Run("filter", func(t *testing.T) {
		imgs := frames("cam", 10, ms(0), 40*time.Millisecond)
		f := operator.Filter(func(img flow.Image) bool { return img.Time.After(ms(6)) })
		got, err := runOp(t, f, imgs)
		if err != nil || len(got) != 3 || f.Passed() != 3 || f.Dropped() != 7 {
			t.Fatalf("filter: %d images, %v", len(got), err)
		}
	})
	t.Run("map", func(t *testing.T) {
		imgs := frames("cam", 6, ms(0), 40*time.Millisecond)
		m := operator.Map(func(_ context.Context, img flow.Image) (flow.Image, error) {
			switch img.Time.Sub(ms(0)) / (40 * time.Millisecond) {
			case 1: // drop
				return nil, nil
			case 2: // annotate a private copy
				c := img.Clone()
				c.Data[0], c.Modified = 255, true
				return c, nil
			}
			return img, nil
		})
		got, err := runOp(t, m, imgs)
		if err != nil || len(got) != 5 || m.Dropped() != 1 {
			t.Fatalf("map: %d images, dropped %d, %v", len(got), m.Dropped(), err)
		}
		if !released(imgs[1]) || !released(imgs[2]) || released(imgs[0]) {
			t.Fatal("map must release dropped and replaced inputs only")
		}
		if got[1].Data[0] != 255 || !got[1].Modified || got[1] == imgs[2] {
			t.Fatal("map did not pass the clone")
		}
	})
	t.Run("map error stops", func(t *testing.T) {
		boom := errors.New("boom")
		imgs := frames("cam", 5, ms(0), 40*time.Millisecond)
		m := operator.Map(func(_ context.Context, img flow.Image) (flow.Image, error) {
			if img.Time.Equal(ms(2)) {
				return nil, boom
			}
			return img, nil
		})
		got, err := runOp(t, m, imgs)
		if !errors.Is(err, boom) || len(got) != 2 || !released(imgs[2]) {
			t.Fatalf("map error: %v after %d images", err, len(got))
		}
	})
	t.Run("map to typed results", func(t *testing.T) {
		imgs := frames("cam", 4, ms(0), 40*time.Millisecond)
		in, out := make(chan flow.Image, 4), make(chan int64, 4)
		for _, img := range imgs {
			in <- img
		}
		close(in)
		err := operator.MapTo(context.Background(), in, out, func(_ context.Context, img flow.Image) (int64, error) {
			return img.TimestampMS(), nil
		})
		if err != nil || len(out) != 4 || !released(imgs[3]) {
			t.Fatalf("MapTo: %d results, %v", len(out), err)
		}
	})
}

func TestCancelStopsOperators(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, op := range []flow.Operator{
		operator.Throttle(5), &operator.DropStale{KeepNewest: true, MaxAge: time.Hour}, operator.KeyframesOnly(),
		operator.Map(func(_ context.Context, img flow.Image) (flow.Image, error) { return img, nil }),
		&operator.Motion{},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		in, out := make(chan flow.Image), make(chan flow.Image) // nobody reads out
		errc := make(chan error, 1)
		go func() { errc <- op.Run(ctx, in, out) }()
		img := frames("cam", 1, time.Now(), 0)[0]
		img.Keyframe = true
		in <- img
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("%T: Run returned %v after cancel", op, err)
		}
	}
}
