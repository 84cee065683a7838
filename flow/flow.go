// Package flow runs dataflow graphs of live video: sources emit
// *media.ChImage on channels, operators transform them, sinks consume
// them. Declare nodes and edges, then Run(ctx):
//
//	g := flow.New(flow.Options{})
//	cam := g.Source("cam", source.Live(client, "cam1", chrysalis.CameraOptions{}))
//	fast := g.Op("throttle", operator.Throttle(5), cam)
//	g.Sink("jpeg", sink.ImageFiles("out", sink.ImageOptions{}), fast, flow.Edge{Buffer: 2, Policy: flow.DropOldest})
//	g.Sink("model", sink.Func(detect), fast, flow.Edge{Buffer: 1, Policy: flow.Block})
//	err := g.Run(ctx)
//
// A node with several consumers fans out: every consumer gets the same
// image, shared read-only (not copied), through its own bounded edge with
// its own overflow policy, so a slow model never stalls a fast one unless
// its edge says Block.
//
// Ownership: a node that receives an image holds one reference to it. It
// either sends it on (the reference travels with it) or calls Release.
// Fan-out adds one reference per extra consumer; a drop-oldest edge releases
// what it drops. Images are shared read-only: Clone before modifying. With
// every node following the rule, image buffers return to their pool and a
// steady-state live graph allocates no new frame buffers.
//
// Run uses errgroup: the first error cancels the graph and Run returns it;
// cancelling ctx stops every goroutine, and Run returns only after all of
// them have exited.
package flow

import (
	"context"

	"github.com/chryscloud/chrysalis-go/media"
)

// Image is the element that flows through a graph.
type Image = *media.ChImage

// Source produces images onto out until it runs out (return nil) or ctx
// ends (return ctx.Err()). Every send must select on ctx.Done(). The graph
// owns out and closes it after Run returns; Run must not close it.
type Source interface {
	Run(ctx context.Context, out chan<- Image) error
}

// Operator reads in until it is closed (then returns nil) or ctx ends, and
// sends results to out. The graph closes out after Run returns.
type Operator interface {
	Run(ctx context.Context, in <-chan Image, out chan<- Image) error
}

// Sink consumes in until it is closed or ctx ends. It releases each image
// when done with it.
type Sink interface {
	Run(ctx context.Context, in <-chan Image) error
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context, out chan<- Image) error

// Run implements Source.
func (f SourceFunc) Run(ctx context.Context, out chan<- Image) error { return f(ctx, out) }

// OperatorFunc adapts a function to Operator.
type OperatorFunc func(ctx context.Context, in <-chan Image, out chan<- Image) error

// Run implements Operator.
func (f OperatorFunc) Run(ctx context.Context, in <-chan Image, out chan<- Image) error {
	return f(ctx, in, out)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, in <-chan Image) error

// Run implements Sink.
func (f SinkFunc) Run(ctx context.Context, in <-chan Image) error { return f(ctx, in) }

// Send sends img on out, or releases it and returns ctx.Err() when ctx ends
// first. Every blocking send in a node should go through it (or an
// equivalent select).
func Send(ctx context.Context, out chan<- Image, img Image) error {
	select {
	case out <- img:
		return nil
	case <-ctx.Done():
		img.Release()
		return ctx.Err()
	}
}

// Recv waits for the next image of in: ok is false when in is closed, err
// is ctx.Err() when ctx ended first. The receive half of Send.
//
// While it waits on an empty input edge it tells the producer that this
// consumer wants an image (see WaitDemand): a live source then converts a
// frame for it, instead of converting every frame into the edge. A
// consumer that has received through Recv should keep doing so for its
// waits; one that never does is fed as if there were no demand signal.
func Recv(ctx context.Context, in <-chan Image) (img Image, ok bool, err error) {
	st := edgeOf(in)
	select {
	case img, ok = <-in:
		return img, ok, nil
	default:
	}
	if st != nil {
		defer recvStart(st)()
	}
	select {
	case img, ok = <-in:
		return img, ok, nil
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// Policy is an edge's overflow policy: what happens when the consumer's
// buffer is full.
type Policy int

const (
	// DropOldest (the default, for live video) discards the oldest buffered
	// image to make room, releases it and counts it: the producer never
	// waits, the consumer always gets the newest images.
	DropOldest Policy = iota
	// Block makes the producer wait for room: backpressure, every image
	// delivered. Upstream slows to the consumer's pace.
	Block
	// DropNewest discards the incoming image when the buffer is full.
	DropNewest
)

func (p Policy) String() string {
	switch p {
	case DropOldest:
		return "drop-oldest"
	case Block:
		return "block"
	case DropNewest:
		return "drop-newest"
	}
	return "unknown"
}

// Edge configures the connection into a node.
type Edge struct {
	// Buffer is the edge's capacity in images. Default 1.
	Buffer int
	// Policy is the overflow policy. Default DropOldest.
	Policy Policy
}
