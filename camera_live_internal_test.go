package chrysalis

import (
	"context"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
)

// The live follower stops after LiveIdle without a Latest call, the next
// call starts a new one, and Close stops it.
func TestFollowerIdleAndClose(t *testing.T) {
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{MaxAge: 10 * time.Second})
	defer mc.Close()
	live := clip.Live(t, mc, "live", time.Second)
	defer live.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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
