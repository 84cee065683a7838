package ingest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
)

// flakyCache is a memory cache whose Append fails while down.
type flakyCache struct {
	cache.Cache
	down atomic.Bool
}

func (f *flakyCache) Append(ctx context.Context, cam string, p *cache.Packet) (cache.ID, error) {
	if f.down.Load() {
		return cache.ID{}, errors.New("cache down")
	}
	return f.Cache.Append(ctx, cam, p)
}

// TestWriterGivesUpOnAGOP: when the writer gives up on a keyframe (it fell
// out of the buffer span while the cache was down), the rest of its GOP is
// dropped with it, so the cache resumes at the next keyframe. The buffer is
// filled so that the in-flight keyframe expires while the buffer itself is
// not over its limit (no overflow drop happens). Runs on synctest's fake
// clock.
func TestWriterGivesUpOnAGOP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := cache.NewMemory(cache.Retention{})
		defer mem.Close()
		fc := &flakyCache{Cache: mem}
		fc.down.Store(true)
		cfg := Config{Camera: "w", Input: "x.mp4", Buffer: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		in, err := New(fc, cfg)
		if err != nil {
			t.Fatal(err)
		}
		q := newQueue(in.cfg.Buffer, true, &in.buffered, in.onDrop)
		done := make(chan struct{})
		go func() {
			defer close(done)
			in.writeLoop(context.Background(), q, func(error) {})
		}()
		const gop = 10
		push := func(n int) {
			if err := q.push(context.Background(), gopItem(n, gop)); err != nil {
				t.Fatal(err)
			}
		}
		push(1)
		synctest.Wait() // the writer holds 1 and waits out its first backoff
		// 2..27: 27 is 1040 ms after 1 (1 expires) but only 1000 ms after
		// 2 (the buffer is not over its 1 s limit).
		for n := 2; n <= 27; n++ {
			push(n)
		}
		// The writer retries, fails, gives up on 1: wait (on the bubble's
		// fake clock, so a busy machine does not matter) for its first drop.
		for deadline := time.Now().Add(10 * time.Second); in.dropped.Load() == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the writer never gave up on packet 1 (nothing dropped in 10 s of fake time)")
			}
		}
		synctest.Wait()
		if d := in.dropped.Load(); d != gop {
			t.Errorf("dropped %d after giving up on packet 1, want %d (its whole GOP)", d, gop)
		}
		fc.down.Store(false)
		q.close()
		<-done
		pkts, err := mem.Range(context.Background(), "w", cache.MinID, cache.MaxID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(pkts) != 17 || !pkts[0].Keyframe || pkts[0].Number != 11 || pkts[16].Number != 27 {
			t.Fatalf("cache holds %d packets from %d (keyframe %v): want 11..27", len(pkts), pkts[0].Number, pkts[0].Keyframe)
		}
		if st := in.Stats(); st.Written != 17 || st.Dropped != 10 || st.Buffered != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}
