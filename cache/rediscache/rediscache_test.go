package rediscache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/cachetest"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

func TestRedisContract(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	cachetest.Run(t, func(t *testing.T, r cache.Retention) cache.Cache {
		c, err := rediscache.Dial(context.Background(), rediscache.ConnOptions{URL: srv.URL()}, rediscache.Options{Retention: r})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	})
}

// TestDeadlineIsNotAnOutage: a call whose ctx deadline passes while it
// waits on Redis fails with context.DeadlineExceeded, never ErrUnreachable.
// go-redis puts ctx's deadline on the socket, so the read or write times
// out (a net error, "i/o timeout") at the same moment as ctx's own timer,
// and often before it: 5 of 40 keyframes-only consumers ended a run with
// "redis: unreachable: write tcp ...: i/o timeout". And Classify took
// context.DeadlineExceeded itself, a net.Error, for an outage (this test's
// failure before the fix: "redis: unreachable: context deadline exceeded").
func TestDeadlineIsNotAnOutage(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	c, err := rediscache.Dial(context.Background(), rediscache.ConnOptions{URL: srv.URL()}, rediscache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	id, err := c.Append(ctx, "cam", &cache.Packet{Keyframe: true, Data: []byte{0, 0, 0, 1, 0x65}, Timestamp: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]func(context.Context) error{
		"ReadAfter (blocking)": func(ctx context.Context) error {
			_, err := c.ReadAfter(ctx, "cam", id, 1, time.Second)
			return err
		},
		"Stats": func(ctx context.Context) error { _, err := c.Stats(ctx, "cam"); return err },
		"KeyframeAtOrBefore": func(ctx context.Context) error {
			_, err := c.KeyframeAtOrBefore(ctx, "cam", cache.MaxID)
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			ended := 0
			// Deadlines from 0 to ~2 ms, so that some pass in the middle
			// of the round trip.
			for i := range 300 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%20)*100*time.Microsecond)
				err := call(ctx)
				cancel()
				switch {
				case err == nil:
				case errors.Is(err, context.DeadlineExceeded):
					ended++
				default:
					t.Fatalf("try %d: %q; want nil or context.DeadlineExceeded", i, err)
				}
			}
			if ended == 0 {
				t.Fatal("no call ran into its deadline: the test checks nothing")
			}
		})
	}
}
