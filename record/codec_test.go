package record_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/chryscloud/chrysalis-go/record"
)

// A writer that keeps the codec parameters in the codec key only (its
// keyframes carry no extradata, as testclip.WriteRedis writes): segments
// take them from the cache and play (they held no packet before).
func TestCodecFromCacheKey(t *testing.T) {
	clip := testclip.Load(t, "clip720.mp4")
	srv := testredis.Start(t, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	t0 := time.Now().Add(-time.Minute).UnixMilli()
	clip.WriteRedis(t, rdb, "cam", t0, 40)
	ctx := context.Background()
	rc, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: srv.URL()}, rediscache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	cl := chrysalis.New(rc, chrysalis.Options{})
	defer cl.Close()
	dir := t.TempDir()
	rec, err := record.New(cl, []string{"cam"}, record.Options{Dir: dir, Always: true, Segment: time.Second,
		PreRoll: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	eventually(t, 10*time.Second, "100 packets", func() bool { return stats(t, rec, "cam").Packets == 100 })
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segments(t, dir, "cam")
	if len(segs) != 2 {
		t.Fatalf("segments %v", segs)
	}
	for _, s := range segs {
		if n := len(probePackets(t, s.Path)); n != 50 {
			t.Errorf("%s plays %d packets, want 50", s.Path, n)
		}
	}
}
