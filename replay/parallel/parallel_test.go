package parallel_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/chryscloud/chrysalis-go/replay/parallel"
)

// A Plan whose writes fail returns the error and leaves the group
// unplanned: no stale plan key that makes a retry fail with ErrPlanned
// (or that workers take for a plan).
func TestPlanFailureReleasesThePlan(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	// The work stream's key holds a string: the stream commands fail
	// (WRONGTYPE).
	if err := rdb.Set(ctx, parallel.StreamKey("g"), "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	from := time.UnixMilli(1_700_000_000_000)
	if _, err := parallel.Plan(ctx, rdb, nil, "g", nil, from, from.Add(time.Second)); err == nil {
		t.Fatal("Plan over a non-stream key succeeded")
	}
	if v, err := rdb.Get(ctx, "chrysalis:replay:g:plan").Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("after a failed Plan the plan key holds %q (err %v), want none", v, err)
	}
	rdb.Del(ctx, parallel.StreamKey("g"))
	n, err := parallel.Plan(ctx, rdb, nil, "g", nil, from, from.Add(time.Second))
	if err != nil || n != 0 {
		t.Fatalf("Plan retry: %d items, %v", n, err)
	}
}

// blockingCache holds Plan inside its split until release is closed.
type blockingCache struct {
	cache.Cache
	entered, release chan struct{}
}

func (b *blockingCache) KeyframeAtOrBefore(ctx context.Context, cam string, at cache.ID) (cache.Packet, error) {
	close(b.entered)
	<-b.release
	return b.Cache.KeyframeAtOrBefore(ctx, cam, at)
}

// redisAndMemory starts a redis-server for the plan and an empty memory
// cache for the video; both end with the test.
func redisAndMemory(t *testing.T) (*redis.Client, *cache.Memory) {
	t.Helper()
	srv := testredis.Start(t, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	mc := cache.NewMemory(cache.Retention{MaxAge: time.Hour})
	t.Cleanup(func() { mc.Close() })
	return rdb, mc
}

// The planner's lock expires while it plans (a planner that dies mid-plan
// does not leave the workers waiting forever); the finished plan does not.
func TestPlanningLockExpires(t *testing.T) {
	rdb, mc := redisAndMemory(t)
	ctx := context.Background()
	const t0 = int64(1_700_000_000_000)
	testclip.Load(t, "clip720.mp4").Append(t, mc, "cam", t0, 40)
	bc := &blockingCache{Cache: mc, entered: make(chan struct{}), release: make(chan struct{})}
	type result struct {
		n   int
		err error
	}
	res := make(chan result, 1)
	go func() {
		n, err := parallel.Plan(ctx, rdb, bc, "g", []string{"cam"}, time.UnixMilli(t0), time.UnixMilli(t0+4000))
		res <- result{n, err}
	}()
	<-bc.entered
	ttl, err := rdb.PTTL(ctx, "chrysalis:replay:g:plan").Result()
	close(bc.release)
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("planning lock TTL %v (%v), want (0, 1m]", ttl, err)
	}
	r := <-res
	if r.err != nil || r.n != 2 {
		t.Fatalf("Plan: %d items, %v (want 2 GOPs)", r.n, r.err)
	}
	if ttl := rdb.PTTL(ctx, "chrysalis:replay:g:plan").Val(); ttl != -1 {
		t.Errorf("the finished plan expires (PTTL %v)", ttl)
	}
}

// A planner whose lock expired (or was removed) mid-plan stops: another
// planner may own the group now.
func TestPlanningLockLost(t *testing.T) {
	rdb, mc := redisAndMemory(t)
	ctx := context.Background()
	const t0 = int64(1_700_000_000_000)
	clip := testclip.Load(t, "clip720.mp4")
	clip.Append(t, mc, "a", t0, 40)
	clip.Append(t, mc, "b", t0, 40)
	bc := &blockingCache{Cache: mc, entered: make(chan struct{}), release: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		_, err := parallel.Plan(ctx, rdb, bc, "g", []string{"a", "b"}, time.UnixMilli(t0), time.UnixMilli(t0+4000))
		errc <- err
	}()
	<-bc.entered // in camera a's split
	rdb.Del(ctx, "chrysalis:replay:g:plan")
	bc.entered = make(chan struct{}) // camera b's split may enter again
	close(bc.release)
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "lock expired") {
		t.Fatalf("Plan after losing its lock: %v, want the lock expired", err)
	}
	if n, _ := rdb.Exists(ctx, parallel.StreamKey("g")).Result(); n != 0 {
		t.Error("the planner wrote items after losing its lock")
	}
}
