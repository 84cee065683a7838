package flow

import (
	"sync"
	"sync/atomic"
	"time"
)

// HistogramBounds are the upper bounds of the buckets of every node
// histogram (frame age, latency): 1 ms to 30 s, roughly ×2.5 apart. An
// observation above the last bound counts only in Count and Sum (the +Inf
// bucket).
var HistogramBounds = [...]time.Duration{
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
	30 * time.Second,
}

// Histogram is a snapshot of a duration histogram with the buckets of
// HistogramBounds.
type Histogram struct {
	// Buckets[i] counts the observations <= HistogramBounds[i]
	// (cumulative, as Prometheus wants them).
	Buckets [len(HistogramBounds)]uint64
	// Count is the number of observations, Sum their total.
	Count uint64
	Sum   time.Duration
}

// histogram is a lock-free duration histogram: one atomic add per bucket
// hit, plus count and sum. Safe for concurrent Observe and snapshot.
type histogram struct {
	buckets [len(HistogramBounds)]atomic.Uint64 // non-cumulative
	count   atomic.Uint64
	sum     atomic.Int64
}

func (h *histogram) observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	for i, b := range HistogramBounds {
		if d <= b {
			h.buckets[i].Add(1)
			break
		}
	}
	h.sum.Add(int64(d))
	h.count.Add(1) // last: a snapshot never sees more in buckets than in Count
}

func (h *histogram) snapshot() Histogram {
	var s Histogram
	s.Count = h.count.Load() // first: the buckets read next hold at least this many
	s.Sum = time.Duration(h.sum.Load())
	var cum uint64
	for i := range h.buckets {
		cum += h.buckets[i].Load()
		s.Buckets[i] = cum
	}
	// Observations that landed between the loads: keep the snapshot
	// consistent (buckets never above Count).
	for i := range s.Buckets {
		s.Buckets[i] = min(s.Buckets[i], s.Count)
	}
	return s
}

// arrivals remembers when recent images entered a node's input edge, by
// frame time, so the node's output can be matched to its input to measure
// the node's latency (queueing plus processing). An operator that emits a
// new image (a clone, a resize) keeps the frame time, so the match holds;
// an output with no recent matching input (an operator that makes new
// frames) is not measured.
type arrivals struct {
	mu   sync.Mutex
	next int
	ring [32]struct{ frame, at int64 } // unix ns
}

func (a *arrivals) add(frame, at int64) {
	a.mu.Lock()
	a.ring[a.next] = struct{ frame, at int64 }{frame, at}
	a.next = (a.next + 1) % len(a.ring)
	a.mu.Unlock()
}

// take returns when the image of frame time frame arrived (newest first)
// and forgets it, so a frame emitted twice is measured once.
func (a *arrivals) take(frame int64) (int64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := 1; k <= len(a.ring); k++ {
		i := (a.next - k + len(a.ring)) % len(a.ring)
		if e := &a.ring[i]; e.at != 0 && e.frame == frame {
			at := e.at
			e.at = 0
			return at, true
		}
	}
	return 0, false
}

// NodeHistograms are a node's histograms, readable while the graph runs.
type NodeHistograms struct {
	Name string
	Kind string
	// Age is the frame age (now - image time) of each image at the node's
	// output (at a sink's input), as NodeStats.Age averages it.
	Age Histogram
	// Latency is, for operators, the time from an image's arrival in the
	// node's input edge to the node emitting an image of the same frame
	// time: queueing plus processing. Empty for sources and sinks.
	Latency Histogram
}

// Histograms returns every node's histograms, in declaration order.
func (g *Graph) Histograms() []NodeHistograms {
	out := make([]NodeHistograms, 0, len(g.nodes))
	for _, n := range g.nodes {
		out = append(out, NodeHistograms{Name: n.name, Kind: n.kind.String(), Age: n.ageHist.snapshot(),
			Latency: n.latHist.snapshot()})
	}
	return out
}
