package cache_test

import (
	"testing"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/cachetest"
)

func TestMemoryContract(t *testing.T) {
	cachetest.Run(t, func(t *testing.T, r cache.Retention) cache.Cache {
		c := cache.NewMemory(r)
		t.Cleanup(func() { c.Close() })
		return c
	})
}
