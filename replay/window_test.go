package replay_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/replay"
)

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
		wr := &replay.Window{Client: cl, Camera: "cam", Pre: pre, Post: post, Options: opts}
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
		wr := &replay.Window{Client: cl, Camera: "cam", Pre: pre, Post: post, Options: opts}
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
		wr := &replay.Window{Client: cl, Camera: "cam", Pre: 10 * time.Second, Post: post, Options: opts}
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
	defer clip.Live(t, mc, "live", 600*time.Millisecond).Stop() // 600 ms of history for pre, at once
	cl := chrysalis.New(mc, chrysalis.Options{})
	pre, post := 300*time.Millisecond, 500*time.Millisecond
	wr := &replay.Window{Client: cl, Camera: "live", Pre: pre, Post: post,
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
	_, err := runOp(t, &replay.Window{}, nil)
	if err == nil {
		t.Fatal("Window without a client: no error")
	}
	// A camera that never appears: the window is given up after MaxWait.
	cl := chrysalis.New(cache.NewMemory(cache.Retention{}), chrysalis.Options{})
	wr := &replay.Window{Client: cl, Camera: "ghost", MaxWait: 150 * time.Millisecond}
	got, err := runOp(t, wr, triggers(ms(0)))
	if err != nil || len(got) != 0 {
		t.Fatalf("missing camera: %d frames, %v", len(got), err)
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal("unexpected cancel")
	}
}

func TestWindowCancel(t *testing.T) {
	defer goleak.VerifyNone(t)
	w := &replay.Window{Client: chrysalis.New(cache.NewMemory(cache.Retention{}), chrysalis.Options{}), Camera: "x"}
	ctx, cancel := context.WithCancel(context.Background())
	in, out := make(chan flow.Image), make(chan flow.Image) // nobody reads out
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx, in, out) }()
	img := frames("cam", 1, time.Now(), 0)[0]
	img.Keyframe = true
	in <- img
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v after cancel", err)
	}
}
