package rediscache_test

import (
	"context"
	"testing"

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
