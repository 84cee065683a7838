package flow

import (
	"context"
	"sync"
	"sync/atomic"
)

// Demand: a node that makes its images on request (source.Live converts the
// newest decoded frame; converting every frame into a drop-oldest edge whose
// sink takes one in five costs four conversions for nothing, and the image
// the sink takes has waited in the edge since it was made) calls WaitDemand
// before it makes one. WaitDemand returns when a consumer is waiting for an
// image: blocked in Recv on an empty input edge, with no image made for it
// since it began to wait (each wait asks for one image). A consumer is known to
// pull once it has called Recv; until then, and for any consumer that
// receives from its channel directly (a select of its own, a range), the
// producer is not held back: WaitDemand returns at once, as if there were
// no demand signal at all. Every operator and sink of this module receives
// through Recv.

// edgeState is what the producer of an edge knows of its consumer.
type edgeState struct {
	ch       chan Image
	producer *Node
	pulls    atomic.Bool // the consumer has received through Recv
	// want: the consumer is blocked in Recv on the empty edge and no image
	// has been made for it since it started waiting. WaitDemand takes it
	// (an image made is one on its way); Recv drops it when it returns.
	want atomic.Bool
}

// edges maps a running graph's input channels (as <-chan Image, the type
// consumers hold) to their state, for Recv.
var edges sync.Map

type nodeKey struct{}

// withNode gives a node's Run the context WaitDemand reads.
func withNode(ctx context.Context, n *Node) context.Context {
	if len(n.outEdges) == 0 {
		return ctx
	}
	return context.WithValue(ctx, nodeKey{}, n)
}

// registerEdges records the state of every edge of a graph about to run
// and returns the function that forgets them.
func (g *Graph) registerEdges(inputs map[*Node]chan Image) func() {
	var keys []<-chan Image
	for _, n := range g.nodes {
		n.outEdges = n.outEdges[:0]
		n.demand = make(chan struct{}, 1)
	}
	for _, n := range g.nodes {
		for _, c := range n.consumers {
			st := &edgeState{ch: inputs[c], producer: n}
			n.outEdges = append(n.outEdges, st)
			key := (<-chan Image)(st.ch)
			edges.Store(key, st)
			keys = append(keys, key)
		}
	}
	return func() {
		for _, k := range keys {
			edges.Delete(k)
		}
	}
}

// edgeOf returns the state of a running graph's edge, marking its
// consumer as one that pulls; nil when in is not such an edge.
func edgeOf(in <-chan Image) *edgeState {
	v, ok := edges.Load(in)
	if !ok {
		return nil
	}
	st := v.(*edgeState)
	if !st.pulls.Load() {
		st.pulls.Store(true)
	}
	return st
}

// recvStart marks the consumer of st waiting (its edge is empty) and
// returns the function that unmarks it.
func recvStart(st *edgeState) func() {
	st.want.Store(true)
	select {
	case st.producer.demand <- struct{}{}:
	default:
	}
	return func() { st.want.Store(false) }
}

// WaitDemand blocks until a consumer of the calling node wants an image,
// or ctx ends (it returns ctx.Err()). It returns at once when the node has
// a consumer that does not pull through Recv, or when called outside a
// graph node's Run (ctx is not a node's context). A source that makes its
// images on demand calls it before making each one (see source.Live).
func WaitDemand(ctx context.Context) error {
	n, _ := ctx.Value(nodeKey{}).(*Node)
	if n == nil {
		return ctx.Err()
	}
	for {
		wanted := false
		for _, st := range n.outEdges {
			if !st.pulls.Load() {
				return ctx.Err()
			}
			wanted = wanted || (st.want.Load() && len(st.ch) == 0)
		}
		if wanted {
			// The image about to be made goes to every consumer: it
			// answers every wait so far.
			for _, st := range n.outEdges {
				st.want.Store(false)
			}
			return ctx.Err()
		}
		select {
		case <-n.demand:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
