package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
)

// fanoutLoops: the replayed window is the clip 3 times (300 frames).
const fanoutLoops = 3

// BenchmarkFanOut compares the process CPU time (getrusage user+sys, every
// thread) of a flow graph with 1 sink and with 4 sinks on the same source,
// which decodes once: a flow.SourceFunc running Camera.Past over a memory
// cache and sending with flow.Send, and flow.SinkFunc sinks that read a few
// bytes of each image and Release it. Edges are Block so every sink gets
// every image (the 4-sink graph really does 4x the sink work). Each
// iteration runs the graphs in ABBA order (1, 4, 4, 1 sinks). Metrics:
// cpu_ratio_4_vs_1, the median of the iterations' ratios (target <= 1.1),
// and the CPU per frame of each.
func BenchmarkFanOut(b *testing.B) {
	for _, r := range resolutions {
		b.Run(r.name, func(b *testing.B) {
			clip := loopClip(loadClip(b, r.file), fanoutLoops)
			mc := cache.NewMemory(cache.Retention{})
			defer mc.Close()
			clip.Append(b, mc, r.name, t0, stepMS)
			cl := chrysalis.New(mc, chrysalis.Options{Logger: quiet})
			n := len(clip.Packets)
			start, end := time.UnixMilli(t0), time.UnixMilli(testclip.MS(t0, n-1, stepMS))

			var cpu [5]time.Duration // by sink count
			var ratios []float64
			iters := 0
			for b.Loop() {
				var it [5]time.Duration
				for _, sinks := range []int{1, 4, 4, 1} { // ABBA: drift weighs on both
					it[sinks] += fanOut(b, cl, r.name, start, end, n, sinks)
				}
				cpu[1], cpu[4] = cpu[1]+it[1], cpu[4]+it[4]
				ratios = append(ratios, it[4].Seconds()/it[1].Seconds())
				iters++
			}
			frames := float64(2 * n * iters)
			b.ReportMetric(float64(cpu[1].Microseconds())/frames, "cpu_us/frame_1sink")
			b.ReportMetric(float64(cpu[4].Microseconds())/frames, "cpu_us/frame_4sinks")
			b.ReportMetric(median(ratios), "cpu_ratio_4_vs_1")
			check(b, "FanOut/"+r.name+" CPU 4 sinks / 1 sink", median(ratios), "<=", 1.1, "x")
		})
	}
}

// fanOut runs one graph of a Past source and `sinks` sinks and returns its
// CPU time.
func fanOut(b *testing.B, cl *chrysalis.Client, cam string, start, end time.Time, n, sinks int) time.Duration {
	g := flow.New(flow.Options{Logger: quiet})
	src := g.Source("past", flow.SourceFunc(func(ctx context.Context, out chan<- flow.Image) error {
		c := cl.Camera(cam, chrysalis.CameraOptions{Logger: quiet})
		defer c.Close()
		for img, err := range c.Past(ctx, start, end) {
			if err != nil {
				return err
			}
			if err := flow.Send(ctx, out, img); err != nil {
				return err
			}
		}
		return nil
	}))
	var got, sum atomic.Int64
	for i := range sinks {
		g.Sink(fmt.Sprintf("sink%d", i), flow.SinkFunc(func(ctx context.Context, in <-chan flow.Image) error {
			for img := range in {
				sum.Add(touch(img))
				got.Add(1)
				img.Release()
			}
			return nil
		}), src, flow.Edge{Buffer: 2, Policy: flow.Block})
	}
	before := cpuTime(b)
	if err := g.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	cpu := cpuTime(b) - before
	if got.Load() != int64(n*sinks) {
		b.Fatalf("%d sinks received %d images, want %d", sinks, got.Load(), n*sinks)
	}
	return cpu
}

// touch reads a few bytes of the image, as a consumer that looks at it.
func touch(img flow.Image) int64 {
	d := img.Data
	return int64(d[0]) + int64(d[len(d)/2]) + int64(d[len(d)-1])
}
