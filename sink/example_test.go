package sink_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/sink"
)

// Export the last minute of a camera's cache to an MP4 without decoding:
// the packets are remuxed as they are.
func ExampleCreateMP4() {
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
	kf, err := c.KeyframeAtOrBefore(ctx, "cam1", start) // start on a keyframe
	if err != nil {
		log.Fatal(err)
	}
	pkts, err := c.Range(ctx, "cam1", kf.ID, end, 0)
	if err != nil {
		log.Fatal(err)
	}
	w, err := sink.CreateMP4("cam1.mp4", codec, sink.VideoOptions{FastStart: true})
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

// Serve an MJPEG preview of a graph's stream on :8080.
func ExampleNewMJPEGServer() {
	srv := sink.NewMJPEGServer(sink.MJPEGOptions{MaxFPS: 10})
	defer srv.Close()
	go http.ListenAndServe(":8080", srv.Handler())
	// g.Sink("preview", srv.Sink("cam1"), src, flow.Edge{Buffer: 1, Policy: flow.DropOldest})
	_ = srv.Sink("cam1")
}

func ExampleFunc() {
	in := make(chan flow.Image, 2)
	in <- &chrysalis.ChImage{Camera: "cam1", Width: 640, Height: 360}
	in <- &chrysalis.ChImage{Camera: "cam1", Width: 640, Height: 360}
	close(in)
	n := 0
	s := sink.Func(func(ctx context.Context, img flow.Image) error {
		n++ // img is valid until fn returns; Retain or Clone to keep it
		return nil
	})
	err := s.Run(context.Background(), in)
	fmt.Println(n, err)
	// Output: 2 <nil>
}
