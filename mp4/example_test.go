package mp4_test

import (
	"context"
	"log"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/mp4"
)

// Export the last minute of a camera's cache to an MP4 without decoding:
// the packets are remuxed as they are. Export does the same in one call.
func ExampleCreate() {
	ctx := context.Background()
	var c cache.Cache // e.g. rediscache.Dial(...)
	if c == nil {
		return
	}
	codec, err := c.Codec(ctx, "cam1")
	if err != nil {
		log.Fatal(err)
	}
	end := cache.IDAt(time.Now())
	start := cache.IDAt(time.Now().Add(-time.Minute))
	first, err := c.Range(ctx, "cam1", start, end, 1)
	if err != nil || len(first) == 0 {
		log.Fatal("nothing cached in the window", err)
	}
	kf, err := c.KeyframeAtOrBefore(ctx, "cam1", first[0].ID) // start on a keyframe
	if err != nil {
		log.Fatal(err)
	}
	pkts, err := c.Range(ctx, "cam1", kf.ID, end, 0)
	if err != nil {
		log.Fatal(err)
	}
	w, err := mp4.Create("cam1.mp4", codec, mp4.Options{FastStart: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range pkts {
		if err := w.WritePacket(p); err != nil {
			w.Close()
			log.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
}
