package chrysalis

import (
	"context"
	"fmt"
	"sync"
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

// stepCam is a camera "cam" in a memory cache fed by hand from clip720:
// add(i) appends packet i stamped t0 + 40i ms. The context (30 s), the
// camera and the cache end with the test.
type stepCam struct {
	t   *testing.T
	ctx context.Context
	cam *Camera
	t0  int64
	add func(i int)
}

func newStepCam(t *testing.T) *stepCam {
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{MaxLen: 1000})
	t.Cleanup(func() { mc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	if err := mc.SetCodec(ctx, "cam", clip.CacheCodec()); err != nil {
		t.Fatal(err)
	}
	sc := &stepCam{t: t, ctx: ctx, t0: time.Now().Add(-time.Second).UnixMilli()}
	sc.add = func(i int) {
		t.Helper()
		p := clip.Packets[i]
		var extra []byte
		if p.Key {
			extra = clip.Extradata
		}
		if _, err := mc.Append(ctx, "cam", &cache.Packet{Timestamp: testclip.MS(sc.t0, i, 40), Keyframe: p.Key, Data: p.Data,
			PTS: p.PTS, DTS: p.DTS, TimeBase: clip.TimeBase, Width: clip.Width, Height: clip.Height,
			CodecName: clip.Codec, PixFmt: clip.PixFmt, Extradata: extra}); err != nil {
			t.Fatal(err)
		}
	}
	sc.cam = New(mc, Options{}).Camera("cam", CameraOptions{})
	t.Cleanup(func() { sc.cam.Close() })
	return sc
}

// firstLook adds packets 0..n-1 and makes the camera's first WaitLatest,
// which starts its follower.
func (sc *stepCam) firstLook(n int) *follower {
	sc.t.Helper()
	for i := range n {
		sc.add(i)
	}
	if _, err := sc.cam.WaitLatest(sc.ctx); err != nil {
		sc.t.Fatal(err)
	}
	return sc.cam.follower
}

// steadyReader makes f see a reader that has called every 200 ms, whose
// last call was at last; f.mu must be held.
func steadyReader(f *follower, last time.Time) {
	f.gaps = [3]time.Duration{200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond}
	f.lastRead = last
}

// at is packet i's image time.
func (sc *stepCam) at(i int) time.Time { return time.UnixMilli(testclip.MS(sc.t0, i, 40)) }

// until waits until cond holds on the follower's state (under its lock),
// checking it again at every change the follower announces (f.wake).
func (sc *stepCam) until(what string, cond func(f *follower) bool) {
	sc.t.Helper()
	f := sc.cam.follower
	timeout := time.After(15 * time.Second)
	for {
		f.mu.Lock()
		ok, wake := cond(f), f.wake
		state := fmt.Sprintf("read %d, decoded %d", f.fed, f.doneN)
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-wake:
		case <-timeout:
			sc.t.Fatalf("not in 15 s: %s (%s)", what, state)
		}
	}
}

// WaitLatest called while the follower decodes a packet newer than the
// frame it holds waits for that packet's frame (at most one decode)
// instead of returning the older one: the newest frame is one frame
// interval old at worst, not one interval plus a decode.
func TestWaitLatestWaitsForFrameInFlight(t *testing.T) {
	sc := newStepCam(t)
	for i := range 5 {
		sc.add(i)
	}
	cam, ctx := sc.cam, sc.ctx
	img, err := cam.WaitLatest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !img.Time.Equal(sc.at(4)) {
		t.Fatalf("first image at %v, want packet 4's %v", img.Time, sc.at(4))
	}
	f := cam.follower
	// Packet 5 decoded and held, not yet returned.
	sc.add(5)
	sc.until("packet 5 decoded", func(f *follower) bool { return f.doneN >= 6 })
	// Packet 6 held up in the decoder.
	entered, release := make(chan struct{}), make(chan struct{})
	f.mu.Lock()
	f.testFeed = func() { close(entered); <-release }
	f.mu.Unlock()
	sc.add(6)
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
	timeout := time.After(15 * time.Second)
	for {
		f.mu.Lock()
		waiting, wake := f.waits > 0, f.wake
		f.mu.Unlock()
		if waiting {
			break
		}
		select {
		case img := <-got:
			close(release)
			t.Fatalf("WaitLatest returned the frame at %v while packet 6 was in the decoder", img.Time)
		case <-wake: // the follower announced a change (a waiter counts as one)
		case <-timeout:
			t.Fatal("WaitLatest neither returned nor waited")
		}
	}
	close(release)
	img = <-got
	if img == nil || !img.Time.Equal(sc.at(6)) {
		t.Fatalf("WaitLatest returned %v, want packet 6's frame at %v", img, sc.at(6))
	}
}

// For a reader calling at a steady pace, the follower leaves the packets
// that arrive after a call in the cache and decodes them together before
// the next one is due, skipping those before a keyframe among them; a
// call that comes early gets the newest frame all the same: WaitLatest
// wakes the follower and waits for the batch, Latest wakes it and
// returns the frame it has.
func TestFollowerBatchesForSteadyReader(t *testing.T) {
	for _, wait := range []bool{true, false} {
		t.Run(fmt.Sprintf("wait=%v", wait), func(t *testing.T) {
			sc := newStepCam(t)
			cam, ctx := sc.cam, sc.ctx
			f := sc.firstLook(5)
			// Calls every 200 ms so far, the next one due in 10 s.
			f.mu.Lock()
			steadyReader(f, time.Now().Add(10*time.Second))
			early := f.lastRead.Add(-5 * time.Second)
			batches, read := f.batches, f.fed
			f.mu.Unlock()
			sc.until("the follower asleep for the batch", func(f *follower) bool { return f.asleep })
			decoded := cam.Stats().Decoded
			// Packets 5..51: packet 50 is the clip's second keyframe.
			for i := 5; i <= 51; i++ {
				sc.add(i)
			}
			if wait {
				img, err := cam.WaitLatest(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !img.Time.Equal(sc.at(51)) {
					t.Fatalf("WaitLatest returned the frame at %v, want packet 51's at %v", img.Time, sc.at(51))
				}
			} else {
				img, err := cam.Latest(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if img != nil && !img.Time.Equal(sc.at(51)) {
					t.Fatalf("Latest returned the frame at %v before the batch", img.Time)
				}
				sc.until("the batch decoded", func(f *follower) bool { return f.doneN >= read+2 })
				if img, err = cam.Latest(ctx); err != nil || img == nil || !img.Time.Equal(sc.at(51)) {
					t.Fatalf("Latest after the batch: %v, %v; want packet 51's frame at %v", img, err, sc.at(51))
				}
			}
			if time.Now().After(early) {
				t.Fatal("the batch was decoded at its due time, not when the call came")
			}
			// Only the keyframe and the packet after it were decoded.
			if got := cam.Stats().Decoded - decoded; got != 2 {
				t.Fatalf("the batch decoded %d packets, want 2 (from the keyframe)", got)
			}
			f.mu.Lock()
			skipped, nb := f.skipped, f.batches-batches
			f.mu.Unlock()
			if skipped != 45 || nb != 1 {
				t.Fatalf("skipped %d, batches %d; want 45 and 1", skipped, nb)
			}
		})
	}
}

// TestFollowerHoldsPacketsAfterACall: a steady reader's call is answered
// while the follower waits in its blocking read; the packet that then
// arrives is left for the batch before the next call, not decoded alone
// (decoding each packet alone is what batching saves).
func TestFollowerHoldsPacketsAfterACall(t *testing.T) {
	sc := newStepCam(t)
	cam, ctx := sc.cam, sc.ctx
	f := sc.firstLook(5)
	sc.until("the follower synced", func(f *follower) bool { return f.doneN == f.fed && f.fed > 0 })
	// A steady reader (every 200 ms) whose next call is due in 10 s.
	f.mu.Lock()
	steadyReader(f, time.Now().Add(10*time.Second))
	done, batches := f.doneN, f.batches
	f.mu.Unlock()
	decoded := cam.Stats().Decoded
	sc.add(5)
	sc.until("the follower asleep for the batch", func(f *follower) bool { return f.asleep })
	if got := cam.Stats().Decoded - decoded; got != 0 {
		t.Fatalf("%d packets decoded before the batch; packet 5 should wait for it", got)
	}
	img, err := cam.WaitLatest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !img.Time.Equal(sc.at(5)) {
		t.Fatalf("WaitLatest returned the frame at %v, want packet 5's at %v", img.Time, sc.at(5))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.doneN != done+1 || f.batches != batches {
		// One packet: a batch of one is not counted as a batch.
		t.Fatalf("decoded %d, batches %d after the call; want 1 and 0", f.doneN-done, f.batches-batches)
	}
}

// countCache counts a Cache's KeyframeAtOrBefore and Stats calls.
type countCache struct {
	cache.Cache
	mu          sync.Mutex
	kf, stats   int
	blockedRead chan struct{} // receives when a blocking ReadAfter starts
}

func (c *countCache) KeyframeAtOrBefore(ctx context.Context, cam string, id cache.ID) (cache.Packet, error) {
	c.mu.Lock()
	c.kf++
	c.mu.Unlock()
	return c.Cache.KeyframeAtOrBefore(ctx, cam, id)
}

func (c *countCache) Stats(ctx context.Context, cam string) (cache.Stats, error) {
	c.mu.Lock()
	c.stats++
	c.mu.Unlock()
	return c.Cache.Stats(ctx, cam)
}

func (c *countCache) ReadAfter(ctx context.Context, cam string, after cache.ID, count int64, block time.Duration) ([]cache.Packet, error) {
	if block > 0 {
		select {
		case c.blockedRead <- struct{}{}:
		default:
		}
	}
	return c.Cache.ReadAfter(ctx, cam, after, count, block)
}

// TestKeyframesOnlyWaitSkipsPFrames: a KeyframesOnly WaitLatest waiting
// for the next keyframe reads each P-frame that arrives once, without
// looking at the keyframe index or the stream's span again, and returns
// the next keyframe's image.
func TestKeyframesOnlyWaitSkipsPFrames(t *testing.T) {
	sc := newStepCam(t)
	for i := range 10 {
		sc.add(i)
	}
	cc := &countCache{Cache: sc.cam.cl.cache, blockedRead: make(chan struct{}, 1)}
	kcam := New(cc, Options{}).Camera("cam", CameraOptions{KeyframesOnly: true})
	defer kcam.Close()
	img, err := kcam.WaitLatest(sc.ctx)
	if err != nil || img == nil || !img.Time.Equal(sc.at(0)) {
		t.Fatalf("first WaitLatest: %v, %v; want keyframe 0", img, err)
	}
	type res struct {
		img *ChImage
		err error
	}
	done := make(chan res, 1)
	go func() {
		img, err := kcam.WaitLatest(sc.ctx)
		done <- res{img, err}
	}()
	// Packets 10..49 are P-frames, 50 the clip's second keyframe; each
	// is added once the waiter blocks for the next packet.
	<-cc.blockedRead
	cc.mu.Lock()
	kf0, st0 := cc.kf, cc.stats
	cc.mu.Unlock()
	for i := 10; i <= 49; i++ {
		sc.add(i)
		select {
		case <-cc.blockedRead:
		case r := <-done:
			t.Fatalf("WaitLatest returned at P-frame %d: %v, %v", i, r.img, r.err)
		}
	}
	cc.mu.Lock()
	kf, st := cc.kf-kf0, cc.stats-st0
	cc.mu.Unlock()
	if kf != 0 || st != 0 {
		t.Fatalf("40 P-frames made %d keyframe-index lookups and %d span reads; want 0 and 0", kf, st)
	}
	sc.add(50)
	r := <-done
	if r.err != nil || r.img == nil || !r.img.Time.Equal(sc.at(50)) {
		t.Fatalf("WaitLatest: %v, %v; want keyframe 50's image at %v", r.img, r.err, sc.at(50))
	}
}
