package flow_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/media"
)

// demandSource makes an image only when flow.WaitDemand lets it, counting
// what it made; waiting is true while it is blocked in WaitDemand.
type demandSource struct {
	made    atomic.Int64
	waiting atomic.Bool
}

func (s *demandSource) Run(ctx context.Context, out chan<- flow.Image) error {
	for {
		s.waiting.Store(true)
		err := flow.WaitDemand(ctx)
		s.waiting.Store(false)
		if err != nil {
			return err
		}
		s.made.Add(1)
		img := &media.ChImage{Camera: "test", Time: time.Now(), Width: 1, Height: 1, Stride: 3, Data: make([]byte, 3)}
		if err := flow.Send(ctx, out, img); err != nil {
			return err
		}
	}
}

// A sink that receives through flow.Recv and is busy between images gets
// one image per Recv: the source makes nothing while the sink is busy, so
// nothing is made to be dropped.
func TestWaitDemandPullingSink(t *testing.T) {
	src := &demandSource{}
	g := flow.New(flow.Options{})
	s := g.Source("src", src)
	const want = 20
	var got, made0 int64
	g.Sink("slow", flow.SinkFunc(func(ctx context.Context, in <-chan flow.Image) error {
		for got < want {
			img, ok, err := flow.Recv(ctx, in)
			if err != nil || !ok {
				return err
			}
			img.Release()
			got++
			if got == 1 {
				// Until its first Recv the consumer is not known to pull,
				// so the source was free to make images before.
				made0 = src.made.Load()
			}
			// Busy: give the source every chance to make more. Either it
			// waits for demand or it has made another image.
			if err := waitErr(15*time.Second, "the source to wait or make another image", func() bool {
				return src.waiting.Load() || src.made.Load() > got+1
			}); err != nil {
				return err // the sink's goroutine: g.Run returns it, the test fails there
			}
		}
		return nil
	}), s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Run(ctx); err != nil {
		t.Fatal(err)
	}
	after := src.made.Load() - made0
	t.Logf("made %d before the first Recv returned, %d after for %d more received", made0, after, got-1)
	// One more than received: an image may have been on its way when the
	// consumer first pulled.
	if got != want || after > want-1+1 {
		t.Fatalf("made %d images for %d received after the first: want one per Recv", after, got-1)
	}
}

// A sink that receives from its channel directly (not through Recv) is fed
// as before: the source is never held back for it.
func TestWaitDemandDirectReceiver(t *testing.T) {
	src := &demandSource{}
	g := flow.New(flow.Options{})
	s := g.Source("src", src)
	var got int
	g.Sink("direct", flow.SinkFunc(func(ctx context.Context, in <-chan flow.Image) error {
		for img := range in {
			img.Release()
			if got++; got == 50 {
				return nil
			}
		}
		return nil
	}), s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil || got != 50 {
		t.Fatalf("received %d images (ctx %v): a direct receiver must not be starved", got, ctx.Err())
	}
}

// Outside a graph node, WaitDemand does not block.
func TestWaitDemandOutsideGraph(t *testing.T) {
	if err := flow.WaitDemand(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := flow.WaitDemand(ctx); err == nil {
		t.Fatal("WaitDemand on an ended context returned nil")
	}
}
