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

// RedisSwitch is the edge proxy's storage switch: the field "store" ("1"
// on, "0" off) of the hash last_access_time_<camera> (rediscache.AccessKey).
// The Recorder polls it (Options.Poll), since keyspace notifications are
// off by default in Redis.
func RedisSwitch(rdb redis.UniversalClient) Switch { return redisSwitch{rdb} }

type redisSwitch struct{ rdb redis.UniversalClient }

var _ Switch = redisSwitch{}

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
