package media

import "testing"

// The free list keeps what a steady pipeline cycles through, lets go of a
// burst's extra buffers after a window in which they stayed free, and
// never holds more than maxPooled.
func TestBufPoolTrimsToWorkingSet(t *testing.T) {
	var p bufPool
	const size = 1 << 10
	// A burst: 12 buffers in flight at once, then all returned.
	var burst [][]byte
	for range 12 {
		burst = append(burst, p.get(size))
	}
	for _, b := range burst {
		p.put(b)
	}
	if got := len(p.bufs); got != 12 {
		t.Fatalf("after the burst: %d free, want 12", got)
	}
	// Steady state: 2 frames in flight, for three trim windows.
	a, b := p.get(size), p.get(size)
	for range 3 * trimEvery {
		p.put(a)
		a, b = b, p.get(size)
	}
	p.put(a)
	p.put(b)
	if got := len(p.bufs); got > 3 {
		t.Errorf("after steady use of 2 buffers: %d free, want at most 3", got)
	}
	// The buffers it kept are reused: no allocation in steady state.
	allocs := testing.AllocsPerRun(100, func() {
		x, y := p.get(size), p.get(size)
		p.put(x)
		p.put(y)
	})
	if allocs != 0 {
		t.Errorf("steady state allocates %.1f buffers per cycle", allocs)
	}
	// The bound.
	var many [][]byte
	for range 2 * maxPooled {
		many = append(many, p.get(size))
	}
	for _, b := range many {
		p.put(b)
	}
	if got := len(p.bufs); got != maxPooled {
		t.Errorf("%d free after returning %d, want the bound %d", got, len(many), maxPooled)
	}
}
