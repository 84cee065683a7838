package rediscache_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/annexb"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

// BenchmarkCloudKeyframes compares the two ways to list the keyframes of
// a cloud stream (1080p clip, 400 entries, 8 keyframes): the Lua page
// scan in Redis (what Keyframes does) against client-side XRANGE pages
// parsed in Go, which move every frame over the network.
func BenchmarkCloudKeyframes(b *testing.B) {
	srv := testredis.Start(b, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	b.Cleanup(func() { rdb.Close() })
	a := testclip.LoadAnnexB(b, "clip1080.mp4")
	for i := range 4 {
		a.WriteCloud(b, rdb, "input_rtmp_stream", int64(1_700_000_000_000+i*4000), 40)
	}
	ctx := context.Background()
	c, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: srv.URL(), Layout: rediscache.LayoutCloud}, rediscache.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	b.Run("lua", func(b *testing.B) {
		for b.Loop() {
			kfs, err := c.Keyframes(ctx, "cam", cache.MinID, cache.MaxID, 0)
			if err != nil || len(kfs) != 8 {
				b.Fatalf("%d keyframes, err %v", len(kfs), err)
			}
		}
	})
	b.Run("client", func(b *testing.B) {
		for b.Loop() {
			n, from := 0, "-"
			for {
				msgs, err := rdb.XRangeN(ctx, "input_rtmp_stream", from, "+", 64).Result()
				if err != nil {
					b.Fatal(err)
				}
				for _, m := range msgs {
					if annexb.Keyframe([]byte(m.Values["frame"].(string))) {
						n++
					}
				}
				if len(msgs) < 64 {
					break
				}
				id, _ := cache.ParseID(msgs[len(msgs)-1].ID)
				from = id.Next().String()
			}
			if n != 8 {
				b.Fatalf("%d keyframes", n)
			}
		}
	})
}
