package streamsx_test

import (
	"context"
	"fmt"
	"time"

	"github.com/reugn/go-streams"
	gsflow "github.com/reugn/go-streams/flow"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/streamsx"
)

// A go-streams filter as a node of a Chrysalis graph.
func ExampleOperator() {
	keyframes := streamsx.Operator(func(src streams.Source) streams.Flow {
		return src.Via(gsflow.NewFilter(func(img flow.Image) bool { return img.Keyframe }, 1))
	})
	ctx := context.Background()
	in, out := make(chan flow.Image), make(chan flow.Image)
	go func() {
		defer close(in)
		for i := range 50 {
			img := &chrysalis.ChImage{Camera: "cam", Time: time.UnixMilli(int64(40 * i)), Keyframe: i%25 == 0}
			if flow.Send(ctx, in, img) != nil {
				return
			}
		}
	}()
	done := make(chan error, 1)
	go func() { defer close(out); done <- keyframes.Run(ctx, in, out) }()
	for img := range out {
		fmt.Println("keyframe at", img.Time.UnixMilli(), "ms")
		img.Release()
	}
	fmt.Println("err:", <-done)
	// Output:
	// keyframe at 0 ms
	// keyframe at 1000 ms
	// err: <nil>
}
