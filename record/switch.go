package record

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/chryscloud/chrysalis-go/cache/rediscache"
)

// Switch is an external per-camera on/off state that a Recorder follows and
// writes.
type Switch interface {
	// Get returns the camera's state; ok is false when it is not set.
	Get(ctx context.Context, camera string) (on, ok bool, err error)
	// Set writes the camera's state.
	Set(ctx context.Context, camera string, on bool) error
}

// Notifier is a Switch that can also tell when it may have changed, so a
// Recorder need not wait for its next poll.
type Notifier interface {
	// Notify returns a channel that receives (without blocking: one
	// pending signal at most) when a camera's state may have changed,
	// until stop, which waits for what Notify started to end.
	Notify(ctx context.Context, cameras []string) (wake <-chan struct{}, stop func())
}

// RedisSwitch is the edge proxy's storage switch: the field "store" ("1"
// on, "0" off) of the hash last_access_time_<camera> (rediscache.AccessKey).
// The Recorder polls it (Options.Poll). It also subscribes to the keys'
// keyspace notifications, which Redis sends when configured to
// (notify-keyspace-events with K and h, e.g. "Kh"; off by default): a
// change is then followed at once.
func RedisSwitch(rdb redis.UniversalClient) Switch { return redisSwitch{rdb} }

type redisSwitch struct{ rdb redis.UniversalClient }

var (
	_ Switch   = redisSwitch{}
	_ Notifier = redisSwitch{}
)

func (s redisSwitch) Get(ctx context.Context, cam string) (on, ok bool, err error) {
	v, err := s.rdb.HGet(ctx, rediscache.AccessKey(cam), "store").Result()
	if errors.Is(err, redis.Nil) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	return v == "1", true, nil
}

func (s redisSwitch) Set(ctx context.Context, cam string, on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	return s.rdb.HSet(ctx, rediscache.AccessKey(cam), "store", v).Err()
}

func (s redisSwitch) Notify(ctx context.Context, cams []string) (<-chan struct{}, func()) {
	pats := make([]string, len(cams))
	for i, c := range cams {
		pats[i] = "__keyspace@*__:" + rediscache.AccessKey(c)
	}
	// stop ends the goroutine before ctx does: a closed subscription
	// alone looks like a failure to retry.
	ctx, cancel := context.WithCancel(ctx)
	ps := s.rdb.PSubscribe(ctx, pats...)
	wake := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := ps.ReceiveMessage(ctx); err != nil {
				// Closed, or Redis unreachable or refusing (ACL): the
				// poll goes on; retry the subscription a second later.
				if ctx.Err() != nil || !sleep(ctx, retryPause) {
					return
				}
				continue
			}
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
	return wake, func() { cancel(); ps.Close(); <-done }
}
