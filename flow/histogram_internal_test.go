package flow

import (
	"testing"
	"time"
)

// The per-image cost of the hooks: one observe per node output, and an
// arrival add and take per operator image.
func BenchmarkHistogramObserve(b *testing.B) {
	var h histogram
	for i := 0; b.Loop(); i++ {
		h.observe(time.Duration(i%40) * time.Millisecond)
	}
}

func BenchmarkArrivals(b *testing.B) {
	var a arrivals
	for i := int64(1); b.Loop(); i++ {
		a.add(i, i)
		a.take(i)
	}
}
