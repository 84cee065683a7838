package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Options configures a Graph. The zero value is usable.
type Options struct {
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Graph is a declared dataflow graph. Declare nodes with Source, Op and
// Sink, then call Run once. Declaration is not safe for concurrent use;
// Stats is, while Run runs.
type Graph struct {
	log   *slog.Logger
	nodes []*Node
	names map[string]bool
	errs  []error
	ran   atomic.Bool
}

type nodeKind int

const (
	kindSource nodeKind = iota
	kindOp
	kindSink
)

func (k nodeKind) String() string {
	return [...]string{"source", "operator", "sink"}[k]
}

// Node is a handle on a declared node, used to connect consumers to it.
type Node struct {
	g         *Graph
	name      string
	kind      nodeKind
	src       Source
	op        Operator
	sink      Sink
	from      *Node
	edge      Edge
	consumers []*Node

	in, out, dropped atomic.Int64
	ageNs            atomic.Int64 // EWMA of frame age at output
	intervalNs       atomic.Int64 // EWMA of the time between outputs
	lastOut          atomic.Int64 // unix ns of the last output
	ageHist, latHist histogram
	arr              arrivals // operators: recent input arrivals, for latHist

	outEdges []*edgeState  // what its consumers want (WaitDemand), while Run runs
	demand   chan struct{} // a consumer started waiting
}

// Name is the node's name.
func (n *Node) Name() string { return n.name }

// New returns an empty graph.
func New(o Options) *Graph {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Graph{log: o.Logger, names: map[string]bool{}}
}

func (g *Graph) add(n *Node, from *Node, e []Edge) *Node {
	n.g = g
	switch {
	case n.name == "":
		g.errs = append(g.errs, fmt.Errorf("flow: a %s has no name", n.kind))
	case g.names[n.name]:
		g.errs = append(g.errs, fmt.Errorf("flow: duplicate node name %q", n.name))
	}
	g.names[n.name] = true
	if n.kind != kindSource {
		switch {
		case from == nil:
			g.errs = append(g.errs, fmt.Errorf("flow: node %q has no input node", n.name))
		case from.g != g:
			g.errs = append(g.errs, fmt.Errorf("flow: node %q reads from %q of another graph", n.name, from.name))
		case from.kind == kindSink:
			g.errs = append(g.errs, fmt.Errorf("flow: node %q reads from sink %q", n.name, from.name))
		default:
			from.consumers = append(from.consumers, n)
		}
		n.from = from
		if len(e) > 1 {
			g.errs = append(g.errs, fmt.Errorf("flow: node %q: at most one Edge", n.name))
		}
		if len(e) > 0 {
			n.edge = e[0]
		}
		if n.edge.Buffer <= 0 {
			n.edge.Buffer = 1
		}
	}
	g.nodes = append(g.nodes, n)
	return n
}

// Source declares a source node.
func (g *Graph) Source(name string, s Source) *Node {
	if s == nil {
		g.errs = append(g.errs, fmt.Errorf("flow: source %q is nil", name))
	}
	return g.add(&Node{name: name, kind: kindSource, src: s}, nil, nil)
}

// Op declares an operator reading from `from` through edge e (default
// Edge{Buffer: 1, Policy: DropOldest}).
func (g *Graph) Op(name string, op Operator, from *Node, e ...Edge) *Node {
	if op == nil {
		g.errs = append(g.errs, fmt.Errorf("flow: operator %q is nil", name))
	}
	return g.add(&Node{name: name, kind: kindOp, op: op}, from, e)
}

// Sink declares a sink reading from `from` through edge e (default
// Edge{Buffer: 1, Policy: DropOldest}).
func (g *Graph) Sink(name string, s Sink, from *Node, e ...Edge) *Node {
	if s == nil {
		g.errs = append(g.errs, fmt.Errorf("flow: sink %q is nil", name))
	}
	return g.add(&Node{name: name, kind: kindSink, sink: s}, from, e)
}

// NodeStats are a node's counters, readable while the graph runs.
type NodeStats struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// In counts images accepted into the node's input edge; Dropped those
	// its edge policy discarded.
	In      int64 `json:"in"`
	Dropped int64 `json:"dropped"`
	// Out counts images the node emitted.
	Out int64 `json:"out"`
	// FPS is the recent output rate.
	FPS float64 `json:"fps"`
	// Age is the recent frame age (now - image time) at the node's output:
	// the end-to-end latency up to this node. For sinks it is measured at
	// their input. In - Dropped images reached the node.
	Age time.Duration `json:"age_ns"`
	// Policy and Buffer describe the input edge (empty for sources).
	Policy string `json:"policy,omitempty"`
	Buffer int    `json:"buffer,omitempty"`
}

// Stats returns every node's counters, in declaration order.
func (g *Graph) Stats() []NodeStats {
	out := make([]NodeStats, 0, len(g.nodes))
	for _, n := range g.nodes {
		s := NodeStats{Name: n.name, Kind: n.kind.String(), In: n.in.Load(), Out: n.out.Load(), Dropped: n.dropped.Load(),
			Age: time.Duration(n.ageNs.Load())}
		if iv := n.intervalNs.Load(); iv > 0 && time.Since(time.Unix(0, n.lastOut.Load())) < 5*time.Second {
			s.FPS = math.Round(1e10/float64(iv)) / 10
		}
		if n.kind != kindSource {
			s.Policy, s.Buffer = n.edge.Policy.String(), n.edge.Buffer
		}
		out = append(out, s)
	}
	return out
}

// ErrAlreadyRun is returned by a second Run.
var ErrAlreadyRun = errors.New("flow: graph already run")

// NodeError is a node's failure as Run returns it.
type NodeError struct {
	Node string
	Err  error
}

func (e *NodeError) Error() string { return fmt.Sprintf("flow: node %q: %v", e.Node, e.Err) }
func (e *NodeError) Unwrap() error { return e.Err }

func (g *Graph) validate() error {
	if len(g.errs) > 0 {
		return errors.Join(g.errs...)
	}
	if len(g.nodes) == 0 {
		return errors.New("flow: empty graph")
	}
	for _, n := range g.nodes {
		if n.kind != kindSink && len(n.consumers) == 0 {
			return fmt.Errorf("flow: %s %q has no consumer (connect a sink, e.g. sink.Discard())", n.kind, n.name)
		}
	}
	return nil
}

// Run runs the graph until every source is exhausted and every image has
// drained through, every sink has returned, or ctx ends: all three are the
// plan, and Run returns nil (a caller that needs to tell them apart asks
// ctx.Err()). It returns an error only for a failure: a node that fails
// cancels the graph, and Run returns that node's error as a *NodeError. A
// panic in a node becomes that node's error. Run returns only after every
// goroutine it started has exited.
func (g *Graph) Run(ctx context.Context) error {
	if !g.ran.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	if err := g.validate(); err != nil {
		return err
	}
	// The first real failure cancels the graph before its node drains its
	// input, so the rest of the graph stops instead of feeding a drain.
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var eg errgroup.Group
	var firstErr atomic.Pointer[NodeError]
	fail := func(n *Node, err error) {
		if firstErr.CompareAndSwap(nil, &NodeError{Node: n.name, Err: err}) {
			g.log.Debug("flow: node failed", "node", n.name, "err", err)
		}
		cancel()
	}
	// Channels: every node gets an input edge channel (owned and closed by
	// its producer's distributor) and, when it has consumers, a raw output
	// channel (owned by the graph, closed after the node's Run returns).
	inputs := map[*Node]chan Image{}
	var sinksLeft atomic.Int64
	for _, n := range g.nodes {
		if n.kind != kindSource {
			inputs[n] = make(chan Image, n.edge.Buffer)
		}
		if n.kind == kindSink {
			sinksLeft.Add(1)
		}
	}
	defer g.registerEdges(inputs)()
	for _, n := range g.nodes {
		var raw chan Image
		if len(n.consumers) > 0 {
			raw = make(chan Image)
			outs := make([]chan Image, len(n.consumers))
			for i, c := range n.consumers {
				outs[i] = inputs[c]
			}
			eg.Go(func() error { return distribute(gctx, n, raw, outs) })
		}
		in := inputs[n]
		eg.Go(func() error {
			err := runNode(gctx, n, in, raw)
			switch {
			case err == nil:
			case stopping(gctx):
				// The graph is stopping: a node's error now is how it
				// noticed (a cancelled read, or an I/O deadline taken from
				// ctx that fired a moment before ctx itself), not a failure.
				g.log.Debug("flow: node stopped", "node", n.name, "err", err)
			default:
				fail(n, err)
			}
			if n.kind == kindSink && sinksLeft.Add(-1) == 0 {
				cancel() // every sink is done: nothing left to feed
			}
			if raw != nil {
				close(raw)
			}
			if in != nil {
				drain(gctx, in)
			}
			return nil
		})
	}
	_ = eg.Wait()
	if ne := firstErr.Load(); ne != nil {
		return ne
	}
	return nil
}

// stopping reports whether ctx has ended, or its deadline has passed (a
// deadline-derived I/O timeout can fire before ctx.Done closes).
func stopping(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// runNode runs one node, turning a panic into an error.
func runNode(ctx context.Context, n *Node, in, raw chan Image) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	ctx = withNode(ctx, n)
	switch n.kind {
	case kindSource:
		return n.src.Run(ctx, raw)
	case kindOp:
		return n.op.Run(ctx, in, raw)
	default:
		return n.sink.Run(ctx, in)
	}
}

// drain releases what is left in an input channel until its producer
// closes it, so an early-returning node never blocks its producer.
func drain(ctx context.Context, in chan Image) {
	for {
		select {
		case img, ok := <-in:
			if !ok {
				return
			}
			img.Release()
		case <-ctx.Done():
			// The producer's distributor closes in after ctx ends; release
			// what is buffered.
			for img := range in {
				img.Release()
			}
			return
		}
	}
}

func ewma(v *atomic.Int64, sample int64) {
	old := v.Load()
	if old == 0 {
		v.Store(sample)
		return
	}
	v.Store(old + (sample-old)/8)
}

// distribute forwards n's output to each consumer's input edge with that
// edge's policy. Extra consumers get a Retain of the same image: shared, not
// copied. It closes the consumers' inputs when n's output closes or ctx ends.
func distribute(ctx context.Context, n *Node, raw chan Image, outs []chan Image) error {
	defer func() {
		for _, o := range outs {
			close(o)
		}
	}()
	for {
		var img Image
		var ok bool
		select {
		case img, ok = <-raw:
			if !ok {
				return nil
			}
		case <-ctx.Done():
			drainRaw(raw)
			return nil
		}
		if img == nil {
			continue
		}
		now := time.Now().UnixNano()
		n.out.Add(1)
		frame := img.Time.UnixNano()
		ewma(&n.ageNs, now-frame)
		n.ageHist.observe(time.Duration(now - frame))
		if n.kind == kindOp {
			if at, ok := n.arr.take(frame); ok {
				n.latHist.observe(time.Duration(now - at))
			}
		}
		if last := n.lastOut.Swap(now); last != 0 {
			ewma(&n.intervalNs, now-last)
		}
		for i := 1; i < len(outs); i++ {
			img.Retain()
		}
		for i, c := range n.consumers {
			if err := deliver(ctx, c, outs[i], img, now); err != nil {
				for j := i + 1; j < len(outs); j++ {
					img.Release()
				}
				drainRaw(raw)
				return nil
			}
		}
	}
}

// drainRaw releases what a node still emits after cancellation until its
// Run returns and the graph closes raw (n's sends select on ctx, so this
// ends promptly).
func drainRaw(raw chan Image) {
	for img := range raw {
		img.Release()
	}
}

// deliver puts img on c's input edge according to the edge's policy.
func deliver(ctx context.Context, c *Node, ch chan Image, img Image, now int64) error {
	switch c.kind {
	case kindSink:
		ewma(&c.ageNs, now-img.Time.UnixNano())
		c.ageHist.observe(time.Duration(now - img.Time.UnixNano()))
	case kindOp:
		c.arr.add(img.Time.UnixNano(), now)
	}
	switch c.edge.Policy {
	case Block:
		select {
		case ch <- img:
		case <-ctx.Done():
			img.Release()
			return ctx.Err()
		}
	case DropNewest:
		select {
		case ch <- img:
		default:
			img.Release()
			c.dropped.Add(1)
			return nil
		}
	default: // DropOldest
		for {
			select {
			case ch <- img:
				c.in.Add(1)
				return nil
			default:
			}
			select {
			case old := <-ch:
				old.Release()
				c.dropped.Add(1)
			default:
			}
		}
	}
	c.in.Add(1)
	return nil
}
