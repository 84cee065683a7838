package sink

import (
	"context"
	"sync/atomic"

	"github.com/chryscloud/chrysalis-go/flow"
)

// each is the receive loop of a sink: it calls fn with every image from
// in, in order, until in is closed (it returns nil), ctx ends (ctx.Err())
// or fn fails (fn's error). fn gets the image's reference: it releases or
// forwards it.
func each(ctx context.Context, in <-chan flow.Image, fn func(flow.Image) error) error {
	for {
		img, ok, err := flow.Recv(ctx, in)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if err := fn(img); err != nil {
			return err
		}
	}
}

// Func returns a sink that calls fn for every image, in order, from one
// goroutine. fn borrows the image: the sink releases it when fn returns, so
// fn must Retain it (or Clone it) to keep it longer. An error from fn ends
// Run with that error.
func Func(fn func(ctx context.Context, img flow.Image) error) flow.Sink {
	return flow.SinkFunc(func(ctx context.Context, in <-chan flow.Image) error {
		return each(ctx, in, func(img flow.Image) error {
			err := fn(ctx, img)
			img.Release()
			return err
		})
	})
}

// Chan returns a sink that forwards every image to ch, handing the image's
// reference over to whoever receives from ch (who must Release it). Each
// send selects on ctx: when ctx ends first, the image in hand is released
// and Run returns ctx.Err().
//
// The caller owns ch: Run never closes it. Close it after Run (or the graph
// running it) has returned, if at all.
func Chan(ch chan<- flow.Image) flow.Sink {
	return flow.SinkFunc(func(ctx context.Context, in <-chan flow.Image) error {
		return each(ctx, in, func(img flow.Image) error { return flow.Send(ctx, ch, img) })
	})
}

// Discard returns a sink that releases every image it gets and counts
// them; useful to terminate a branch and in benchmarks.
func Discard() *Counter { return &Counter{} }

// Counter is the sink returned by Discard.
type Counter struct{ n atomic.Int64 }

var _ flow.Sink = (*Counter)(nil)

// Run implements flow.Sink.
func (c *Counter) Run(ctx context.Context, in <-chan flow.Image) error {
	return each(ctx, in, func(img flow.Image) error {
		img.Release()
		c.n.Add(1)
		return nil
	})
}

// Count is the number of images consumed so far; safe from any goroutine.
func (c *Counter) Count() int64 { return c.n.Load() }
