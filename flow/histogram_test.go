package flow_test

import (
	"context"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/flow"
)

// The histograms: an operator that takes 30 ms per image records a latency
// of at least 30 ms for every image it emits (bucket 50 ms, none at or
// below 25 ms), and the frame age grows along the graph.
func TestHistograms(t *testing.T) {
	const n = 20
	const work = 30 * time.Millisecond
	g := flow.New(flow.Options{})
	src := g.Source("src", &counter{n: n})
	slow := g.Op("slow", flow.OperatorFunc(func(ctx context.Context, in <-chan flow.Image, out chan<- flow.Image) error {
		for img := range in {
			time.Sleep(work) // the operator's "processing"
			if err := flow.Send(ctx, out, img); err != nil {
				return err
			}
		}
		return nil
	}), src, flow.Edge{Policy: flow.Block})
	g.Sink("sink", &collectSink{}, slow, flow.Edge{Policy: flow.Block})
	if err := g.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	byName := map[string]flow.NodeHistograms{}
	for _, h := range g.Histograms() {
		byName[h.Name] = h
	}
	lat := byName["slow"].Latency
	i25, i50 := bucket(t, 25*time.Millisecond), bucket(t, 50*time.Millisecond)
	t.Logf("slow latency: count %d, mean %v, <=25ms %d, <=50ms %d", lat.Count, lat.Sum/time.Duration(max(lat.Count, 1)),
		lat.Buckets[i25], lat.Buckets[i50])
	if lat.Count != n || lat.Buckets[i25] != 0 || lat.Sum < n*work {
		t.Errorf("latency %+v: want %d observations, each >= %v", lat, n, work)
	}
	for _, name := range []string{"src", "slow", "sink"} {
		if h := byName[name].Age; h.Count != n {
			t.Errorf("%s age count %d, want %d", name, h.Count, n)
		}
	}
	if byName["sink"].Age.Sum < byName["src"].Age.Sum+n*work {
		t.Errorf("sink age sum %v not past src %v + the work", byName["sink"].Age.Sum, byName["src"].Age.Sum)
	}
	if h := byName["src"].Latency; h.Count != 0 {
		t.Errorf("source latency observed: %+v", h)
	}
}

func bucket(t *testing.T, d time.Duration) int {
	for i, b := range flow.HistogramBounds {
		if b == d {
			return i
		}
	}
	t.Fatalf("no bucket %v", d)
	return -1
}

// BenchmarkGraphPerImage is the graph's own cost per image (source →
// operator → sink, Block edges, no work in the nodes): what the counters
// and histograms add to the hot path.
func BenchmarkGraphPerImage(b *testing.B) {
	g := flow.New(flow.Options{})
	src := g.Source("src", &counter{n: b.N})
	op := g.Op("op", flow.OperatorFunc(func(ctx context.Context, in <-chan flow.Image, out chan<- flow.Image) error {
		for img := range in {
			if err := flow.Send(ctx, out, img); err != nil {
				return err
			}
		}
		return nil
	}), src, flow.Edge{Policy: flow.Block, Buffer: 4})
	g.Sink("sink", &collectSink{}, op, flow.Edge{Policy: flow.Block, Buffer: 4})
	b.ResetTimer()
	if err := g.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
}
