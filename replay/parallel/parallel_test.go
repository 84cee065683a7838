package parallel_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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
