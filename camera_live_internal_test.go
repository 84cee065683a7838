package chrysalis

import (
	"context"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testx"
)

// liveMemory is a memory cache with camera "live" fed in real time from
// clip720 (1 s of history already there), and a 30 s context; the feed,
// the cache and the context end with the test.
func liveMemory(t *testing.T) (*cache.Memory, context.Context) {
	t.Helper()
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{MaxAge: 10 * time.Second})
	t.Cleanup(func() { mc.Close() })
	clip.Live(t, mc, "live", time.Second) // stopped at cleanup, before the cache closes
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return mc, ctx
}

// The live follower stops after LiveIdle without a Latest call, the next
// call starts a new one, and Close stops it.
func TestFollowerIdleAndClose(t *testing.T) {
	mc, ctx := liveMemory(t)
	cam := New(mc, Options{}).Camera("live", CameraOptions{LiveIdle: 300 * time.Millisecond})
	defer cam.Close()

	first, err := cam.WaitLatest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := cam.follower
	select {
	case <-f.done:
	case <-ctx.Done():
		t.Fatal("the follower still runs long after LiveIdle")
	}
	decoded := cam.Stats().Decoded
	if decoded == 0 {
		t.Fatal("the follower decoded nothing")
	}

	next, err := cam.WaitLatest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cam.follower == f || !next.Time.After(first.Time) {
		t.Fatalf("after idle: same follower %v, frame %v after %v", cam.follower == f, next.Time, first.Time)
	}
	g := cam.follower
	cam.Close()
	select {
	case <-g.done:
	default:
		t.Fatal("Close returned with the follower running")
	}
}

func decodeThreads(t *testing.T) int { return testx.Threads(t, "chrysalis-dec") }

// The follower decodes on its decoder's own thread (one while it runs,
// none after Close), or in its goroutine with LiveInline: the same frames
// either way.
func TestFollowerDecodeThread(t *testing.T) {
	mc, ctx := liveMemory(t)
	base := decodeThreads(t)
	for _, inline := range []bool{false, true} {
		cam := New(mc, Options{}).Camera("live", CameraOptions{LiveInline: inline})
		var prev *ChImage
		for range 3 {
			img, err := cam.WaitLatest(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if prev != nil && img.ID.Compare(prev.ID) <= 0 {
				t.Fatalf("inline %v: image %v not after %v", inline, img.ID, prev.ID)
			}
			prev = img
		}
		want := base + 1
		if inline {
			want = base
		}
		if n := decodeThreads(t); n != want {
			t.Errorf("inline %v: %d chrysalis-dec threads while live, want %d", inline, n, want)
		}
		cam.Close()
		if n := decodeThreads(t); n != base {
			t.Errorf("inline %v: %d chrysalis-dec threads after Close, want %d", inline, n, base)
		}
	}
}

// WaitLatest called while the follower decodes a packet newer than the
// frame it holds waits for that packet's frame (at most one decode)
// instead of returning the older one: the newest frame is one frame
// interval old at worst, not one interval plus a decode.
func TestWaitLatestWaitsForFrameInFlight(t *testing.T) {
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{MaxLen: 1000})
	defer mc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := mc.SetCodec(ctx, "cam", clip.CacheCodec()); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Second).UnixMilli()
	appendPkt := func(i int) {
		t.Helper()
		p := clip.Packets[i]
		var extra []byte
		if p.Key {
			extra = clip.Extradata
		}
		if _, err := mc.Append(ctx, "cam", &cache.Packet{Timestamp: testclip.MS(t0, i, 40), Keyframe: p.Key, Data: p.Data,
			PTS: p.PTS, DTS: p.DTS, TimeBase: clip.TimeBase, Width: clip.Width, Height: clip.Height,
			CodecName: clip.Codec, PixFmt: clip.PixFmt, Extradata: extra}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		appendPkt(i)
	}
	cam := New(mc, Options{}).Camera("cam", CameraOptions{})
	defer cam.Close()
	img, err := cam.WaitLatest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.UnixMilli(testclip.MS(t0, 4, 40)); !img.Time.Equal(want) {
		t.Fatalf("first image at %v, want packet 4's %v", img.Time, want)
	}
	f := cam.follower
	waitDone := func(n uint64) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(time.Millisecond) { // poll interval
			f.mu.Lock()
			d := f.doneN
			f.mu.Unlock()
			if d >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the follower decoded %d packets in 15 s, want %d", d, n)
			}
		}
	}
	// Packet 5 decoded and held, not yet returned.
	appendPkt(5)
	waitDone(6)
	// Packet 6 held up in the decoder.
	entered, release := make(chan struct{}), make(chan struct{})
	f.mu.Lock()
	f.testFeed = func() { close(entered); <-release }
	f.mu.Unlock()
	appendPkt(6)
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the follower never took packet 6")
	}
	got := make(chan *ChImage, 1)
	go func() {
		img, err := cam.WaitLatest(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- img
	}()
	waiting := func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.waits > 0
	}
	for !waiting() {
		select {
		case img := <-got:
			close(release)
			t.Fatalf("WaitLatest returned the frame at %v while packet 6 was in the decoder", img.Time)
		case <-ctx.Done():
			t.Fatal("WaitLatest neither returned nor waited")
		case <-time.After(time.Millisecond): // poll interval
		}
	}
	close(release)
	img = <-got
	if want := time.UnixMilli(testclip.MS(t0, 6, 40)); img == nil || !img.Time.Equal(want) {
		t.Fatalf("WaitLatest returned %v, want packet 6's frame at %v", img, want)
	}
}
