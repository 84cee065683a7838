// Fan-out-models feeds one camera to two "models" that want different
// things, the way a real deployment runs a small fast detector next to a
// big slow classifier:
//
//	camera ─┬─ throttle 10 fps ── gray 320x180 ── detector  (fast, ~1 ms a frame)
//	        └─ throttle 1 fps ──────────────────── model     (full size, 300 ms a frame)
//
// The camera is decoded once; both branches share each frame read-only.
// Every edge is drop-oldest with room for one image, so a branch that falls
// behind loses its own stale frames and nothing else: the slow model never
// stalls the detector or the camera. Try -model-latency 3s and watch the
// model's edge drop frames while the detector keeps its 10 fps.
//
// At the end it prints each node's counters from g.Stats().
//
//	go run ./examples/fan-out-models
//	go run ./examples/fan-out-models -model-latency 3s -duration 30s
//	go run ./examples/fan-out-models -redis-url redis://localhost:6379 -camera door
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"text/tabwriter"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/examples/internal/excam"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/operator"
	"github.com/chryscloud/chrysalis-go/sink"
	"github.com/chryscloud/chrysalis-go/source"
)

func main() {
	f := excam.Register(10 * time.Second)
	latency := flag.Duration("model-latency", 300*time.Millisecond, "how long the slow model takes per frame")
	flag.Parse()
	if err := run(f, *latency); err != nil {
		fmt.Fprintln(os.Stderr, "fan-out-models:", err)
		os.Exit(1)
	}
}

func run(f *excam.Flags, latency time.Duration) error {
	ctx, stop := f.Context()
	defer stop()
	cl, closeCache, err := f.Open(ctx)
	if err != nil {
		return err
	}
	defer closeCache()

	// The stand-in models. Each runs in its own goroutine (its sink's) and
	// borrows the image until it returns.
	var detected, classified atomic.Int64
	var detectorAge atomic.Int64 // how old the newest frame was when the detector got it
	detector := func(_ context.Context, img flow.Image) error {
		_ = meanBrightness(img) // a small model on 320x180 gray
		detected.Add(1)
		detectorAge.Store(int64(time.Since(img.Time)))
		return nil
	}
	model := func(ctx context.Context, img flow.Image) error {
		select { // a big model on the full-size BGR24 frame
		case <-time.After(latency):
		case <-ctx.Done():
			return ctx.Err()
		}
		classified.Add(1)
		return nil
	}

	latest := flow.Edge{Buffer: 1, Policy: flow.DropOldest} // keep only the newest frame
	g := flow.New(flow.Options{})
	cam := g.Source("camera", source.Live(cl, f.Camera, chrysalis.CameraOptions{})) // full-size BGR24

	fast := g.Op("throttle-10fps", operator.Throttle(10), cam, latest)
	small := g.Op("gray-320x180", operator.Map(grayThumb(320, 180)), fast, latest)
	g.Sink("detector", sink.Func(detector), small, latest)

	slow := g.Op("throttle-1fps", operator.Throttle(1), cam, latest)
	g.Sink("model", sink.Func(model), slow, latest)

	start := time.Now()
	err = g.Run(ctx) // until -duration or Ctrl-C (nil: a planned stop)
	took := time.Since(start)

	fmt.Printf("ran %s\n", took.Round(time.Millisecond))
	fmt.Printf("detector  %4d frames  %5.1f fps  newest frame %s old when it got it\n",
		detected.Load(), float64(detected.Load())/took.Seconds(), time.Duration(detectorAge.Load()).Round(time.Millisecond))
	fmt.Printf("model     %4d frames  %5.1f fps  %s per frame\n",
		classified.Load(), float64(classified.Load())/took.Seconds(), latency)
	fmt.Println()
	// In counts images accepted into a node's input edge, Dropped those its
	// edge discarded to make room for newer ones, Out what the node emitted.
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "node\tkind\tinput edge\tin\tdropped\tout")
	for _, s := range g.Stats() {
		edge := "-"
		if s.Policy != "" {
			edge = fmt.Sprintf("%s/%d", s.Policy, s.Buffer)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", s.Name, s.Kind, edge, s.In, s.Dropped, s.Out)
	}
	tw.Flush()
	return err
}

// grayThumb returns a Map function that makes the detector's input: a new
// w x h GRAY8 image (nearest-neighbour, BT.601 luma). It must not write into
// the incoming frame, which the model's branch shares; Map releases that
// frame once we return a different image.
//
// When every consumer wants the small gray image, skip this and ask the
// decoder for it: source.Live(cl, id, chrysalis.CameraOptions{Format:
// chrysalis.GRAY8, Width: 320, Height: 180}) converts and resizes in one
// swscale pass. With OpenCV, gocvwin.ToMat plus gocv.Resize and
// gocv.CvtColor do the same as this loop.
//
// The thumbnails' buffers come from an ImagePool: the detector's sink
// releases each one, so in steady state no frame allocates a new buffer.
func grayThumb(w, h int) func(context.Context, flow.Image) (flow.Image, error) {
	var pool chrysalis.ImagePool
	return func(_ context.Context, img flow.Image) (flow.Image, error) {
		if img.Format != chrysalis.BGR24 {
			return nil, fmt.Errorf("gray thumbnail: want BGR24, got %v", img.Format)
		}
		out := &chrysalis.ChImage{
			Camera: img.Camera, Time: img.Time, ID: img.ID, Keyframe: img.Keyframe, PictType: img.PictType, PTS: img.PTS,
			Width: w, Height: h, Stride: w, Format: chrysalis.GRAY8, Data: pool.Buffer(w * h),
			Modified: true, // the pixels are no longer the packet's
		}
		pool.Attach(out)
		for y := range h {
			row := img.Data[(y*img.Height/h)*img.Stride:]
			for x := range w {
				p := row[(x*img.Width/w)*3:]
				out.Data[y*w+x] = uint8((29*int(p[0]) + 150*int(p[1]) + 77*int(p[2])) >> 8)
			}
		}
		return out, nil
	}
}

// meanBrightness is the "detector": the mean of a GRAY8 image.
func meanBrightness(img flow.Image) float64 {
	var sum int
	for y := range img.Height {
		for _, v := range img.Data[y*img.Stride : y*img.Stride+img.Width] {
			sum += int(v)
		}
	}
	return float64(sum) / float64(img.Width*img.Height)
}
