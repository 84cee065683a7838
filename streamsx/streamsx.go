// Package streamsx is the one adapter between Chrysalis flow graphs and
// github.com/reugn/go-streams (v0.13.0): the only place where images
// become `any` and back.
//
//   - ToStreams turns a flow channel into a go-streams Source.
//   - FromStreams brings a go-streams outlet back as typed images; an
//     element that is not a flow.Image is an *ElementError, never a panic.
//   - Operator wraps a go-streams pipeline as a flow.Operator, so go-streams
//     windows, batches or throttlers can sit inside a graph.
//
// go-streams caveats this package works around, and those it cannot:
//
//   - go-streams has no context: its goroutines (one or more per stage,
//     started by the constructors and by Via) end only when their input
//     channel closes and their output is read to the end. ToStreams closes
//     its outlet when ctx ends or in closes, and Drain reads an outlet to
//     its end, so a pipeline built on ToStreams winds down completely;
//     Operator does both before Run returns. A pipeline fed by anything
//     else (or built but never connected) keeps its goroutines.
//   - Stages type-assert with element.(T) in their goroutines: a stage
//     whose T is not flow.Image (*chrysalis.ChImage) panics the process.
//     Build stages on flow.Image.
//   - Elements a stage drops (Filter, a window discarding late data) are
//     never released; images are then collected by the GC instead of
//     returning to their pool. Window stages share one image among several
//     overlapping windows: do not Release images in a window's elements
//     unless you Retain them per window.
//   - SlidingWindow and TumblingWindow emit by a wall-clock ticker even
//     with an event-time extractor, and when the input closes they emit a
//     single final window: elements after it are lost. Windowing a fast
//     replay needs a paced source (source.Replay with Pace).
//   - go-streams' FanOut stalls every branch behind the slowest: use the
//     graph's fan-out (per-edge buffer policies) instead.
package streamsx

import (
	"context"
	"errors"
	"fmt"

	"github.com/reugn/go-streams"
	"github.com/reugn/go-streams/extension"

	"github.com/chryscloud/chrysalis-go/flow"
)

// Source is a go-streams Source fed from a flow channel (see ToStreams).
type Source struct {
	*extension.ChanSource
	done chan struct{}
}

var _ streams.Source = (*Source)(nil)

// Done is closed once the feeding goroutine has exited (after it closed
// the outlet).
func (s *Source) Done() <-chan struct{} { return s.done }

// ToStreams returns a go-streams Source whose elements are the images of
// in (as flow.Image values in `any`). Its outlet is closed when in is
// closed or ctx ends, whichever comes first; one goroutine feeds it and
// exits then (see Done). An image received but not yet taken by go-streams
// when ctx ends is released. Images in the outlet belong to go-streams
// (and whoever consumes it) from then on.
func ToStreams(ctx context.Context, in <-chan flow.Image) *Source {
	ch := make(chan any)
	s := &Source{ChanSource: extension.NewChanSource(ch), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(ch)
		for {
			var img flow.Image
			select {
			case v, ok := <-in:
				if !ok {
					return
				}
				img = v
			case <-ctx.Done():
				return
			}
			select {
			case ch <- img:
			case <-ctx.Done():
				img.Release()
				return
			}
		}
	}()
	return s
}

// ElementError reports a go-streams element that is not a flow.Image.
type ElementError struct {
	// Value is the element.
	Value any
}

func (e *ElementError) Error() string {
	return fmt.Sprintf("streamsx: go-streams element of type %T is not a flow.Image", e.Value)
}

// FromStreams sends the images of src's outlet to out until the outlet is
// closed (then it returns nil) or ctx ends (ctx.Err()). An element that is
// not a flow.Image stops it with an *ElementError. It does not close out.
//
// FromStreams does not drain src when it returns early: go-streams stages
// upstream may then be blocked on a send. Cancel what feeds the pipeline
// (the ctx given to ToStreams) and call Drain(src), as Operator does.
func FromStreams(ctx context.Context, src streams.Outlet, out chan<- flow.Image) error {
	elems := src.Out()
	for {
		var v any
		select {
		case e, ok := <-elems:
			if !ok {
				return nil
			}
			v = e
		case <-ctx.Done():
			return ctx.Err()
		}
		img, ok := v.(flow.Image)
		if !ok || img == nil {
			return &ElementError{Value: v}
		}
		if err := flow.Send(ctx, out, img); err != nil {
			return err
		}
	}
}

// Drain reads src's outlet to its end, releasing the images in it, so the
// go-streams goroutines upstream can finish. It returns when the outlet is
// closed, which for a pipeline fed by ToStreams happens once its ctx ends
// or its input closes.
func Drain(src streams.Outlet) {
	for v := range src.Out() {
		if img, ok := v.(flow.Image); ok {
			img.Release()
		}
	}
}

// StreamsOperator runs a go-streams pipeline as a flow.Operator.
type StreamsOperator struct {
	// Build connects go-streams stages to the source it is given and
	// returns the last one, whose elements must be flow.Image. It is
	// called once per Run. Required.
	Build func(src streams.Source) streams.Flow
}

var _ flow.Operator = (*StreamsOperator)(nil)

// Operator returns a flow.Operator running the go-streams pipeline that
// build makes, e.g.
//
//	streamsx.Operator(func(src streams.Source) streams.Flow {
//		return src.Via(gsflow.NewFilter(func(img flow.Image) bool { return img.Keyframe }, 1))
//	})
func Operator(build func(src streams.Source) streams.Flow) *StreamsOperator {
	return &StreamsOperator{Build: build}
}

// Run implements flow.Operator. Before it returns, the pipeline's outlet
// has been drained to its end and the feeding goroutine has exited, so the
// go-streams goroutines of a pipeline built on src wind down too.
func (o *StreamsOperator) Run(ctx context.Context, in <-chan flow.Image, out chan<- flow.Image) error {
	if o.Build == nil {
		return errors.New("streamsx: StreamsOperator needs a Build func")
	}
	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	src := ToStreams(ictx, in)
	f := o.Build(src)
	err := FromStreams(ictx, f, out)
	cancel() // closes src's outlet; the pipeline then closes stage by stage
	Drain(f)
	<-src.Done()
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
