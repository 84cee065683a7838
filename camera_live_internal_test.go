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
