package sink_test

import (
	"context"
	"fmt"
	"net/http"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/sink"
)

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
