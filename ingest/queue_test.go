package ingest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
)

// testQueue is a drop-mode queue of limit with its counters.
type testQueue struct {
	*queue
	buffered atomic.Int64
	dropped  int
}

func newTestQueue(limit time.Duration) *testQueue {
	tq := &testQueue{}
	tq.queue = newQueue(limit, true, &tq.buffered, func(n int) { tq.dropped += n })
	return tq
}

// gopItem is packet n (from 1) of a 25 fps stream with a keyframe every
// gop packets (1, 1+gop, ...).
func gopItem(n, gop int) *item {
	return &item{
		pkt:   &cache.Packet{Number: int64(n), Keyframe: (n-1)%gop == 0, Timestamp: 1_700_000_000_000 + int64(n)*40},
		media: float64(n) * 0.04,
	}
}

// numbers returns the Numbers buffered, oldest first.
func (q *queue) numbers() []int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ns []int64
	for _, it := range q.live() {
		ns = append(ns, it.pkt.Number)
	}
	return ns
}

// checkGOPs fails unless the buffered packets start at a keyframe and
// every run of consecutive Numbers starts at a keyframe.
func checkGOPs(t *testing.T, q *queue, gop int, at string) {
	t.Helper()
	ns := q.numbers()
	for i, n := range ns {
		if (i == 0 || n != ns[i-1]+1) && (n-1)%int64(gop) != 0 {
			t.Fatalf("%s: packet %d follows %v but is not a keyframe (buffer %v)", at, n, ns[max(i-1, 0):i], ns)
		}
	}
}

// TestQueueOverflowDropsWholeGOPs: a drop-mode queue that overflows drops
// the oldest GOP whole, so what it holds always starts at a keyframe, and
// every packet pushed is either buffered or counted as dropped.
func TestQueueOverflowDropsWholeGOPs(t *testing.T) {
	for _, gop := range []int{10, 25, 7} {
		q := newTestQueue(time.Second) // 1 s: 25 packets
		ctx := context.Background()
		for n := 1; n <= 300; n++ {
			if err := q.push(ctx, gopItem(n, gop)); err != nil {
				t.Fatal(err)
			}
			checkGOPs(t, q.queue, gop, "after push")
			if got := len(q.numbers()) + q.dropped; got != n {
				t.Fatalf("gop %d: after %d pushes %d buffered + %d dropped", gop, n, len(q.numbers()), q.dropped)
			}
		}
		ns := q.numbers()
		t.Logf("gop %d: buffered %d..%d (%d), dropped %d", gop, ns[0], ns[len(ns)-1], len(ns), q.dropped)
		if q.dropped == 0 || ns[len(ns)-1] != 300 || q.buffered.Load() != int64(len(ns)) {
			t.Fatalf("gop %d: dropped %d, buffer %v, buffered counter %d", gop, q.dropped, ns, q.buffered.Load())
		}
	}
}

// TestQueueOverflowLongGOP: a GOP longer than the buffer is dropped whole,
// including the packets of it still to come; its next keyframe is kept.
func TestQueueOverflowLongGOP(t *testing.T) {
	const gop = 100 // 4 s > 1 s buffer
	q := newTestQueue(time.Second)
	ctx := context.Background()
	for n := 1; n <= 250; n++ {
		if err := q.push(ctx, gopItem(n, gop)); err != nil {
			t.Fatal(err)
		}
		checkGOPs(t, q.queue, gop, "after push")
	}
	ns := q.numbers()
	// 201 (keyframe) .. 226 at most, then the overflow dropped GOP 201
	// too; its packets after the overflow are dropped as they come.
	if len(ns) != 0 || q.dropped != 250 {
		t.Fatalf("buffer %v, dropped %d: want an empty buffer, all 250 dropped", ns, q.dropped)
	}
	if err := q.push(ctx, gopItem(301, gop)); err != nil {
		t.Fatal(err)
	}
	if ns := q.numbers(); len(ns) != 1 || ns[0] != 301 {
		t.Fatalf("after the next keyframe the buffer holds %v, want [301]", ns)
	}
}

// TestQueueExpiredDropsItsGOP: when the writer gives up on a packet,
// dropGOP drops the rest of its GOP: the buffered packets up to the next
// keyframe, and, when no keyframe is buffered, the packets still to come
// up to the next keyframe.
func TestQueueExpiredDropsItsGOP(t *testing.T) {
	ctx := context.Background()
	t.Run("KeyframeBuffered", func(t *testing.T) {
		q := newTestQueue(time.Minute)
		for n := 1; n <= 25; n++ {
			q.push(ctx, gopItem(n, 10))
		}
		it, _ := q.pop(ctx) // 1, the keyframe, is in flight and given up
		if it.pkt.Number != 1 {
			t.Fatalf("popped %d", it.pkt.Number)
		}
		if n := q.dropGOP(); n != 9 {
			t.Fatalf("dropGOP dropped %d, want 9 (2..10)", n)
		}
		if ns := q.numbers(); ns[0] != 11 || len(ns) != 15 {
			t.Fatalf("buffer %v, want 11..25", ns)
		}
		q.push(ctx, gopItem(26, 10))
		if ns := q.numbers(); ns[len(ns)-1] != 26 {
			t.Fatalf("packet 26 not buffered: %v", ns)
		}
	})
	t.Run("MidGOP", func(t *testing.T) {
		q := newTestQueue(time.Minute)
		for n := 1; n <= 25; n++ {
			q.push(ctx, gopItem(n, 10))
		}
		for range 4 {
			q.pop(ctx) // 1..3 written, 4 given up
		}
		if n := q.dropGOP(); n != 6 {
			t.Fatalf("dropGOP dropped %d, want 6 (5..10)", n)
		}
		checkGOPs(t, q.queue, 10, "after dropGOP")
	})
	t.Run("NoKeyframeBuffered", func(t *testing.T) {
		q := newTestQueue(time.Minute)
		for n := 1; n <= 5; n++ {
			q.push(ctx, gopItem(n, 10))
		}
		q.pop(ctx) // 1 given up
		if n := q.dropGOP(); n != 4 {
			t.Fatalf("dropGOP dropped %d, want 4 (2..5)", n)
		}
		for n := 6; n <= 12; n++ {
			q.push(ctx, gopItem(n, 10))
		}
		if ns := q.numbers(); len(ns) != 2 || ns[0] != 11 || q.dropped != 5 {
			t.Fatalf("buffer %v, %d dropped by push: want [11 12], 6..10 dropped", ns, q.dropped)
		}
	})
}
