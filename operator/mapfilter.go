package operator

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/chryscloud/chrysalis-go/flow"
)

// MapOp applies Func to every image.
//
// Ownership: MapOp owns the input image. Func may return it (after reading
// it, or after annotating it only if it is not shared: Clone first and set
// Modified, see chrysalis.ChImage), return a different image (MapOp then
// releases the input), or return nil to drop it (MapOp releases it). Func
// must not release the input itself. An error stops the operator: Run
// returns it (and the graph cancels).
type MapOp struct {
	// Func transforms one image. Required.
	Func func(ctx context.Context, img flow.Image) (flow.Image, error)

	dropped atomic.Int64
}

var _ flow.Operator = (*MapOp)(nil)

// Map returns an operator applying f to every image.
func Map(f func(ctx context.Context, img flow.Image) (flow.Image, error)) *MapOp {
	return &MapOp{Func: f}
}

// Dropped counts the images for which Func returned nil.
func (m *MapOp) Dropped() int64 { return m.dropped.Load() }

// Run implements flow.Operator.
func (m *MapOp) Run(ctx context.Context, in <-chan flow.Image, out chan<- flow.Image) error {
	if m.Func == nil {
		return errors.New("operator: MapOp needs a Func")
	}
	for {
		img, ok, err := flow.Recv(ctx, in)
		if err != nil || !ok {
			return err
		}
		res, err := m.Func(ctx, img)
		if res != img {
			img.Release()
		}
		if err != nil {
			res.Release() // nil-safe; the input itself when Func returned it
			return err
		}
		if res == nil {
			m.dropped.Add(1)
			continue
		}
		if err := flow.Send(ctx, out, res); err != nil {
			return err
		}
	}
}

// FilterOp passes the images for which Keep returns true and releases the
// others. Keep must not keep or release the image.
type FilterOp struct {
	// Keep decides. Required.
	Keep func(img flow.Image) bool

	passed, dropped atomic.Int64
}

var _ flow.Operator = (*FilterOp)(nil)

// Filter returns an operator passing the images for which keep is true.
func Filter(keep func(img flow.Image) bool) *FilterOp { return &FilterOp{Keep: keep} }

// KeyframesOnly returns a filter passing only images decoded from
// keyframes (img.Keyframe). The decoding already happened upstream: to
// fetch and decode only keyframes in the first place, set
// chrysalis.CameraOptions.KeyframesOnly on the source instead.
func KeyframesOnly() *FilterOp {
	return Filter(func(img flow.Image) bool { return img.Keyframe })
}

// Passed counts the images sent on.
func (f *FilterOp) Passed() int64 { return f.passed.Load() }

// Dropped counts the images filtered out (and released).
func (f *FilterOp) Dropped() int64 { return f.dropped.Load() }

// Run implements flow.Operator.
func (f *FilterOp) Run(ctx context.Context, in <-chan flow.Image, out chan<- flow.Image) error {
	if f.Keep == nil {
		return errors.New("operator: FilterOp needs a Keep func")
	}
	for {
		img, ok, err := flow.Recv(ctx, in)
		if err != nil || !ok {
			return err
		}
		if !f.Keep(img) {
			img.Release()
			f.dropped.Add(1)
			continue
		}
		if err := flow.Send(ctx, out, img); err != nil {
			return err
		}
		f.passed.Add(1)
	}
}

// MapTo leaves the image graph with typed results: it applies f to every
// image of in and sends each result to out, until in is closed (then it
// returns nil), ctx ends, or f fails. The image is released after f
// returns: f must copy what it keeps (or Clone). The caller owns out:
// MapTo does not close it. Use it at the end of a graph, in a sink or a
// goroutine of your own, to turn images into detections, scores, etc.
func MapTo[T any](ctx context.Context, in <-chan flow.Image, out chan<- T, f func(ctx context.Context, img flow.Image) (T, error)) error {
	for {
		img, ok, err := flow.Recv(ctx, in)
		if err != nil || !ok {
			return err
		}
		v, err := f(ctx, img)
		img.Release()
		if err != nil {
			return err
		}
		select {
		case out <- v:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
