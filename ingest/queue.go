package ingest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
)

// item is one packet on its way to the cache.
type item struct {
	pkt   *cache.Packet
	codec *codecInfo
	// media is the packet's position on the ingest's media clock (seconds
	// of stream time, monotonic across loops and reconnects).
	media float64
	// tries counts failed writes, so a retry can first check whether the
	// failed write reached the cache after all.
	tries int
}

// maxFPS bounds the buffer's packet count (Buffer × maxFPS) in case a
// stream's timestamps do not advance.
const maxFPS = 240

// queue is the in-memory buffer between the reader and the cache writer. It
// holds at most limit of packet time, measured both on the media clock and
// on the packets' capture times. In drop mode (live inputs) pushing beyond
// the limit drops whole GOPs from the oldest end; otherwise push waits for
// room.
//
// Drops never leave a GOP without its keyframe: a drop takes the oldest
// packet and every following non-keyframe packet up to the next keyframe
// (dropGOP); when none is buffered yet, pushes of non-keyframe packets are
// dropped until a keyframe comes (skipToKey). So the first packet after a
// drop is always a keyframe.
type queue struct {
	limit    time.Duration
	maxCount int
	dropMode bool
	onDrop   func(n int)
	buffered *atomic.Int64 // queued plus in flight at the writer

	mu     sync.Mutex
	items  []*item
	head   int
	closed bool
	// skipToKey: the GOP being read lost packets; drop pushes until its
	// next keyframe.
	skipToKey bool
	data      chan struct{} // cap 1: something was pushed or the queue closed
	room      chan struct{} // cap 1: something was popped
}

func newQueue(limit time.Duration, dropMode bool, buffered *atomic.Int64, onDrop func(int)) *queue {
	n := int(limit.Seconds()*maxFPS) + 64
	return &queue{limit: limit, maxCount: n, dropMode: dropMode, onDrop: onDrop, buffered: buffered,
		data: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// spanOver reports whether old and newest are further apart than the limit.
func (q *queue) spanOver(old, newest *item) bool {
	capture := time.Duration(newest.pkt.Timestamp-old.pkt.Timestamp) * time.Millisecond
	media := time.Duration((newest.media - old.media) * float64(time.Second))
	return capture > q.limit || media > q.limit
}

func (q *queue) live() []*item { return q.items[q.head:] }

// push queues it. In drop mode it never waits: the oldest packets beyond
// the limit are dropped. Otherwise it waits for room (or ctx).
func (q *queue) push(ctx context.Context, it *item) error {
	q.mu.Lock()
	if !q.dropMode {
		for {
			l := q.live()
			if len(l) == 0 || (len(l) < q.maxCount && !q.spanOver(l[0], it)) {
				break
			}
			q.mu.Unlock()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-q.room:
			}
			q.mu.Lock()
		}
	}
	if q.skipToKey {
		if !it.pkt.Keyframe {
			q.mu.Unlock()
			q.onDrop(1) // never buffered
			return nil
		}
		q.skipToKey = false
	}
	q.items = append(q.items, it)
	q.buffered.Add(1)
	dropped := 0
	if q.dropMode {
		for l := q.live(); len(l) > 1 && (len(l) > q.maxCount || q.spanOver(l[0], it)); l = q.live() {
			q.dropHead()
			dropped++
			dropped += q.dropGOPLocked()
		}
		q.compact()
	}
	q.mu.Unlock()
	if dropped > 0 {
		q.buffered.Add(-int64(dropped))
		q.onDrop(dropped)
	}
	signal(q.data)
	return nil
}

func (q *queue) dropHead() {
	q.items[q.head] = nil
	q.head++
}

// dropGOPLocked drops the buffered non-keyframe packets at the oldest end,
// the rest of a GOP that lost a packet, and returns how many. If no
// keyframe is buffered, the packets still to come up to the next keyframe
// are dropped by push.
func (q *queue) dropGOPLocked() int {
	n := 0
	for l := q.live(); len(l) > 0 && !l[0].pkt.Keyframe; l = q.live() {
		q.dropHead()
		n++
	}
	if len(q.live()) == 0 {
		q.skipToKey = true
	}
	return n
}

// dropGOP is called by the writer when it gave up on a packet: the rest of
// that packet's GOP cannot be decoded without it, so it is dropped too
// (buffered now, or still to come). It returns how many buffered packets it
// dropped (not yet counted by onDrop; the caller counts them).
func (q *queue) dropGOP() int {
	q.mu.Lock()
	n := q.dropGOPLocked()
	q.compact()
	q.mu.Unlock()
	if n > 0 {
		signal(q.room)
	}
	return n
}

func (q *queue) compact() {
	if q.head > 64 && q.head*2 > len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
}

// pop takes the oldest packet, waiting for one. It returns false when the
// queue is closed and empty, or ctx is done.
func (q *queue) pop(ctx context.Context) (*item, bool) {
	for {
		q.mu.Lock()
		if l := q.live(); len(l) > 0 {
			it := l[0]
			q.items[q.head] = nil
			q.head++
			if q.head == len(q.items) {
				q.items, q.head = q.items[:0], 0
			}
			q.compact()
			q.mu.Unlock()
			signal(q.room)
			return it, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, false
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-q.data:
		}
	}
}

// expired reports whether an in-flight packet fell out of the buffer span
// (drop mode only): the writer drops it instead of retrying it.
func (q *queue) expired(it *item) bool {
	if !q.dropMode {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.live()
	return len(l) > 0 && (len(l) >= q.maxCount || q.spanOver(it, l[len(l)-1]))
}

// clear empties the queue and returns how many packets it held.
func (q *queue) clear() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.live())
	q.items, q.head = nil, 0
	return n
}

// close marks the end of input; pop drains what is left.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	signal(q.data)
}
