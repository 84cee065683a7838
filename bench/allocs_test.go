package bench

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
)

const (
	// allocLoops: the replayed window is the 1080p clip 5 times (500
	// frames). A forced GC at frame heapMark takes the live-heap baseline;
	// allocations are counted from frame allocWarmup to the last frame.
	allocLoops  = 5
	heapMark    = 100
	allocWarmup = 150
	// bgr1080 is the size of one 1080p BGR24 image.
	bgr1080 = 1920 * 1080 * 3
)

// BenchmarkGraphAllocs measures the steady-state heap cost per frame of a
// live 1080p graph: a source replaying a memory cache at full speed
// (Camera.Past, flow.Send) into 3 flow.SinkFunc branches on the default
// live edge (drop-oldest, buffer 1) that touch and Release every image.
// The source takes the runtime.ReadMemStats snapshots itself, between
// frames. Metrics:
//
//   - allocs/frame and B/frame: Mallocs and TotalAlloc deltas from frame
//     150 to the last (350 frames) over the frame count; every goroutine of
//     the process counts;
//   - x_vs_bgr_frame: B/frame over one 1080p BGR24 image (6.2 MB): far
//     below 1 when frame buffers are pooled;
//   - frame_bufs/iter: allocations over 32 KB in that window (new frame
//     buffers: the pool growing to a new in-flight peak or refilling after
//     a GC), per iteration;
//   - heap_growth_MB: live heap after a GC at the last frame minus after a
//     GC at frame 100, the median iteration. 0, or one frame buffer (6.2 MB)
//     when the pool re-allocated one; never proportional to frames.
func BenchmarkGraphAllocs(b *testing.B) {
	clip := loopClip(loadClip(b, "clip1080.mp4"), allocLoops)
	mc := cache.NewMemory(cache.Retention{})
	defer mc.Close()
	const cam = "1080p"
	clip.Append(b, mc, cam, t0, stepMS)
	cl := chrysalis.New(mc, chrysalis.Options{Logger: quiet})
	n := len(clip.Packets)
	start, end := time.UnixMilli(t0), time.UnixMilli(testclip.MS(t0, n-1, stepMS))

	var mallocs, bytes, large uint64
	var growth []float64
	frames, iters := 0, 0
	for b.Loop() {
		var h0, m0, m1, h1 runtime.MemStats
		var large0, large1 uint64
		g := flow.New(flow.Options{Logger: quiet})
		src := g.Source("past", flow.SourceFunc(func(ctx context.Context, out chan<- flow.Image) error {
			c := cl.Camera(cam, chrysalis.CameraOptions{Logger: quiet})
			defer c.Close()
			i := 0
			for img, err := range c.Past(ctx, start, end) {
				if err != nil {
					return err
				}
				switch i {
				case heapMark:
					runtime.GC()
					runtime.ReadMemStats(&h0)
				case allocWarmup:
					runtime.ReadMemStats(&m0)
					large0 = largeAllocs()
				}
				if err := flow.Send(ctx, out, img); err != nil {
					return err
				}
				if i++; i == n {
					runtime.ReadMemStats(&m1)
					large1 = largeAllocs()
					runtime.GC()
					runtime.ReadMemStats(&h1)
				}
			}
			return nil
		}))
		var got, sum atomic.Int64
		for i := range 3 {
			g.Sink(fmt.Sprintf("branch%d", i), flow.SinkFunc(func(ctx context.Context, in <-chan flow.Image) error {
				for img := range in {
					sum.Add(touch(img))
					got.Add(1)
					img.Release()
				}
				return nil
			}), src)
		}
		if err := g.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		if h1.NumGC == 0 {
			b.Fatalf("the source ended early; %d images delivered", got.Load())
		}
		mallocs += m1.Mallocs - m0.Mallocs
		bytes += m1.TotalAlloc - m0.TotalAlloc
		large += large1 - large0
		frames += n - allocWarmup
		iters++
		growth = append(growth, (float64(h1.HeapAlloc)-float64(h0.HeapAlloc))/1e6)
	}
	perFrame := float64(bytes) / float64(frames)
	b.ReportMetric(float64(mallocs)/float64(frames), "allocs/frame")
	b.ReportMetric(perFrame, "B/frame")
	b.ReportMetric(perFrame/bgr1080, "x_vs_bgr_frame")
	b.ReportMetric(float64(large)/float64(iters), "frame_bufs/iter")
	b.ReportMetric(median(growth), "heap_growth_MB")
	check(b, "GraphAllocs/1080p heap bytes per frame / one BGR frame", perFrame/bgr1080, "<=", 0.01, "x")
	check(b, "GraphAllocs/1080p live heap growth over 350 frames", median(growth), "<", bgr1080/1e6, "MB")
}

// largeAllocs is the number of heap allocations over 32 KB so far (the
// last bucket of the runtime's allocation-size histogram).
func largeAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs-by-size:bytes"}}
	metrics.Read(s)
	h := s[0].Value.Float64Histogram()
	return h.Counts[len(h.Counts)-1]
}
