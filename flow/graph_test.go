package flow_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counter emits n hand-made images as fast as the graph takes them (or
// forever when n < 0) and counts what it emitted.
type counter struct {
	n       int
	emitted atomic.Int64
}

func (c *counter) Run(ctx context.Context, out chan<- flow.Image) error {
	for i := 0; c.n < 0 || i < c.n; i++ {
		img := &media.ChImage{Camera: "test", Time: time.Now(), Width: 1, Height: 1, Stride: 3, Data: make([]byte, 3)}
		img.ID.MS = uint64(i)
		if err := flow.Send(ctx, out, img); err != nil {
			return err
		}
		c.emitted.Add(1)
	}
	return nil
}

type collectSink struct {
	got    atomic.Int64
	delay  time.Duration
	seen   chan flow.Image // optional: the first image received
	all    sync.Map        // optional (record): ID.MS -> image
	record bool
}

func (s *collectSink) Run(ctx context.Context, in <-chan flow.Image) error {
	for img := range in {
		s.got.Add(1)
		if s.record {
			s.all.Store(img.ID.MS, img)
		}
		if s.seen != nil {
			select {
			case s.seen <- img:
			default:
			}
		}
		if s.delay > 0 {
			select {
			case <-time.After(s.delay):
			case <-ctx.Done():
				img.Release()
				return ctx.Err()
			}
		}
		img.Release()
	}
	return nil
}

func TestLinearBlockDeliversAll(t *testing.T) {
	g := flow.New(flow.Options{})
	src := &counter{n: 500}
	double := flow.OperatorFunc(func(ctx context.Context, in <-chan flow.Image, out chan<- flow.Image) error {
		for img := range in {
			if err := flow.Send(ctx, out, img); err != nil {
				return err
			}
		}
		return nil
	})
	sink := &collectSink{}
	s := g.Source("src", src)
	o := g.Op("pass", double, s, flow.Edge{Buffer: 4, Policy: flow.Block})
	g.Sink("sink", sink, o, flow.Edge{Buffer: 4, Policy: flow.Block})
	if err := g.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sink.got.Load() != 500 {
		t.Fatalf("sink got %d of 500", sink.got.Load())
	}
	st := g.Stats()
	if st[0].Out != 500 || st[1].In != 500 || st[1].Out != 500 || st[2].In != 500 || st[2].Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := g.Run(context.Background()); !errors.Is(err, flow.ErrAlreadyRun) {
		t.Fatalf("second Run: %v", err)
	}
}

// waitUntil polls cond every 2 ms until it holds, failing t with what after
// d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := waitErr(d, what, cond); err != nil {
		t.Fatal(err)
	}
}

// waitErr is waitUntil for a goroutine other than the test's (which must
// not call t.Fatal): the timeout is an error to return.
func waitErr(d time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond) // poll interval
	}
	return nil
}

// A stalled drop-oldest branch does not stall a fast Block branch: the
// fast branch receives every frame (Block loses nothing), the stalled one
// drops all but what it holds and buffers; both branches see the same
// image, not a copy.
func TestFanOutDropOldestDoesNotStallFastBranch(t *testing.T) {
	g := flow.New(flow.Options{})
	src := &counter{n: 2000}
	fast := &collectSink{record: true}
	stalled := &collectSink{delay: time.Hour, seen: make(chan flow.Image, 1)}
	s := g.Source("src", src)
	g.Sink("fast", fast, s, flow.Edge{Buffer: 8, Policy: flow.Block})
	g.Sink("stalled", stalled, s, flow.Edge{Buffer: 2, Policy: flow.DropOldest})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	waitUntil(t, 10*time.Second, "the source to emit 2000 frames", func() bool { return src.emitted.Load() == 2000 })
	// The fast branch gets the rest of what was sent to it; a shortfall is
	// reported with its count below.
	for deadline := time.Now().Add(2 * time.Second); fast.got.Load() < 2000 && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
	var first flow.Image
	select {
	case first = <-stalled.seen:
	case <-time.After(10 * time.Second):
		t.Fatal("the stalled branch received no image within 10 s")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v, want nil (a planned stop)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of cancel")
	}
	if same, ok := fast.all.Load(first.ID.MS); !ok || same.(flow.Image) != first {
		t.Fatal("branches received different *ChImage values for one frame: copied, not shared")
	}
	got := fast.got.Load()
	st := g.Stats()
	t.Logf("fast branch %d/2000, stalled branch dropped %d", got, st[2].Dropped)
	if got != 2000 || st[1].In != 2000 || st[1].Dropped != 0 {
		t.Fatalf("fast Block branch got %d of 2000 (stats in %d, dropped %d): a Block edge lost frames", got, st[1].In, st[1].Dropped)
	}
	// The stalled sink holds one image and its buffer two: every other
	// frame was dropped, and counted.
	if st[2].Dropped != 2000-3 {
		t.Fatalf("stalled branch dropped %d, want %d (2000 less 1 held and 2 buffered)", st[2].Dropped, 2000-3)
	}
}

// A Block branch applies backpressure: the source runs ahead of a stalled
// consumer by exactly what the edge holds, then waits.
func TestFanOutBlockAppliesBackpressure(t *testing.T) {
	g := flow.New(flow.Options{})
	src := &counter{n: -1}
	s := g.Source("src", src)
	g.Sink("fast", &collectSink{}, s, flow.Edge{Buffer: 8, Policy: flow.DropOldest})
	g.Sink("slow", &collectSink{delay: time.Hour}, s, flow.Edge{Buffer: 3, Policy: flow.Block})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	// 1 in the slow sink's hands + 3 buffered + 1 held by the distributor;
	// the next one waits in the source's send (not counted as emitted).
	const bound = 5
	waitUntil(t, 5*time.Second, "the source to fill the Block branch", func() bool { return src.emitted.Load() >= bound })
	// It must stay there: give the source time to (wrongly) run on.
	time.Sleep(200 * time.Millisecond)
	n := src.emitted.Load()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v, want nil (a planned stop)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of cancel")
	}
	if n != bound {
		t.Fatalf("source emitted %d images past a stalled Block branch of buffer 3, want exactly %d", n, bound)
	}
}

// DropNewest keeps what is buffered and discards the incoming image when
// the buffer is full: a stalled consumer later gets the oldest frames
// (1 and 2 after the one it held), never the newest, and every discarded
// frame is counted.
func TestDropNewestKeepsOldest(t *testing.T) {
	g := flow.New(flow.Options{})
	const n = 100
	holding := make(chan struct{})
	gate := make(chan struct{})
	var emitted atomic.Int64
	src := flow.SourceFunc(func(ctx context.Context, out chan<- flow.Image) error {
		for i := range n {
			img := &media.ChImage{Camera: "test", Time: time.Now(), Width: 1, Height: 1, Stride: 3, Data: make([]byte, 3)}
			img.ID.MS = uint64(i)
			if err := flow.Send(ctx, out, img); err != nil {
				return err
			}
			emitted.Add(1)
			if i == 0 { // let the sink take frame 0 before the rest come
				select {
				case <-holding:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		return nil
	})
	var got []uint64
	sink := flow.SinkFunc(func(ctx context.Context, in <-chan flow.Image) error {
		for img := range in {
			got = append(got, img.ID.MS)
			img.Release()
			if len(got) == 1 {
				close(holding)
				<-gate
			}
		}
		return nil
	})
	s := g.Source("src", src)
	g.Sink("sink", sink, s, flow.Edge{Buffer: 2, Policy: flow.DropNewest})
	done := make(chan error, 1)
	go func() { done <- g.Run(context.Background()) }()
	waitUntil(t, 10*time.Second, "the source to emit every frame", func() bool { return emitted.Load() == n })
	waitUntil(t, 10*time.Second, "the dropped frames to be counted", func() bool { return g.Stats()[1].Dropped >= n-3 })
	close(gate)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of the source's end")
	}
	st := g.Stats()
	t.Logf("DropNewest buffer 2: sink got %v, dropped %d, in %d", got, st[1].Dropped, st[1].In)
	if !slices.Equal(got, []uint64{0, 1, 2}) {
		t.Fatalf("sink got frames %v, want [0 1 2]: the buffered (oldest) frames kept, the newest dropped", got)
	}
	if st[1].Dropped != n-3 || st[1].In != 3 {
		t.Fatalf("stats %+v: want %d dropped, 3 in", st[1], n-3)
	}
}

var errBoom = errors.New("boom")

func TestNodeErrorEndsRun(t *testing.T) {
	for _, where := range []string{"source", "operator", "sink"} {
		t.Run(where, func(t *testing.T) {
			g := flow.New(flow.Options{})
			var s *flow.Node
			if where == "source" {
				s = g.Source("src", flow.SourceFunc(func(ctx context.Context, out chan<- flow.Image) error { return errBoom }))
			} else {
				s = g.Source("src", &counter{n: -1})
			}
			o := s
			if where == "operator" {
				o = g.Op("op", flow.OperatorFunc(func(ctx context.Context, in <-chan flow.Image, out chan<- flow.Image) error {
					<-in
					return errBoom
				}), s)
			} else {
				o = g.Op("op", flow.OperatorFunc(func(ctx context.Context, in <-chan flow.Image, out chan<- flow.Image) error {
					for img := range in {
						if err := flow.Send(ctx, out, img); err != nil {
							return err
						}
					}
					return nil
				}), s)
			}
			if where == "sink" {
				g.Sink("sink", flow.SinkFunc(func(ctx context.Context, in <-chan flow.Image) error {
					(<-in).Release()
					return errBoom
				}), o)
			} else {
				g.Sink("sink", &collectSink{}, o)
			}
			start := time.Now()
			err := g.Run(context.Background())
			var ne *flow.NodeError
			if !errors.Is(err, errBoom) || !errors.As(err, &ne) || ne.Node != map[string]string{"source": "src", "operator": "op", "sink": "sink"}[where] {
				t.Fatalf("Run = %v, want boom from the %s", err, where)
			}
			if time.Since(start) > time.Second {
				t.Fatalf("Run took %v after the error", time.Since(start))
			}
		})
	}
}

func TestCancelStopsWithinASecond(t *testing.T) {
	g := flow.New(flow.Options{})
	s := g.Source("src", &counter{n: -1})
	o := g.Op("op", flow.OperatorFunc(func(ctx context.Context, in <-chan flow.Image, out chan<- flow.Image) error {
		for img := range in {
			if err := flow.Send(ctx, out, img); err != nil {
				return err
			}
		}
		return nil
	}), s, flow.Edge{Buffer: 4, Policy: flow.Block})
	g.Sink("slow", &collectSink{delay: 50 * time.Millisecond}, o, flow.Edge{Policy: flow.Block})
	g.Sink("fast", &collectSink{}, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after cancel", err)
		}
		t.Logf("Run returned %v after cancel", time.Since(start))
	case <-time.After(time.Second):
		t.Fatal("Run did not return within 1 s of cancel")
	}
	goleak.VerifyNone(t)
}

func TestPanicBecomesError(t *testing.T) {
	g := flow.New(flow.Options{})
	s := g.Source("src", &counter{n: 3})
	g.Sink("sink", flow.SinkFunc(func(ctx context.Context, in <-chan flow.Image) error { panic("model crashed") }), s)
	err := g.Run(context.Background())
	var ne *flow.NodeError
	if !errors.As(err, &ne) || ne.Node != "sink" {
		t.Fatalf("Run = %v", err)
	}
}

func TestValidation(t *testing.T) {
	for name, build := range map[string]func(g *flow.Graph){
		"no consumer": func(g *flow.Graph) { g.Source("src", &counter{n: 1}) },
		"duplicate": func(g *flow.Graph) {
			s := g.Source("a", &counter{n: 1})
			g.Sink("a", &collectSink{}, s)
		},
		"nil input": func(g *flow.Graph) { g.Sink("s", &collectSink{}, nil) },
		"empty":     func(g *flow.Graph) {},
	} {
		t.Run(name, func(t *testing.T) {
			g := flow.New(flow.Options{})
			build(g)
			if err := g.Run(context.Background()); err == nil {
				t.Fatal("Run accepted an invalid graph")
			}
		})
	}
}

// When every sink is done (a window closed), the graph ends, even with a
// live source that never runs out.
func TestRunEndsWhenSinksAreDone(t *testing.T) {
	g := flow.New(flow.Options{})
	s := g.Source("src", &counter{n: -1})
	g.Sink("three", flow.SinkFunc(func(ctx context.Context, in <-chan flow.Image) error {
		for range 3 {
			(<-in).Release()
		}
		return nil
	}), s)
	done := make(chan error, 1)
	go func() { done <- g.Run(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run kept going after its only sink returned")
	}
}
