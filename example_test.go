package chrysalis_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/ingest"
	"github.com/chryscloud/chrysalis-go/operator"
	"github.com/chryscloud/chrysalis-go/replay"
	"github.com/chryscloud/chrysalis-go/sink"
	"github.com/chryscloud/chrysalis-go/source"
)

// exampleStart is the cache time of the example camera's first frame.
var exampleStart = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// exampleClient returns a client on an in-process cache holding camera
// "cam1": testdata/clip720.mp4 (4 s of 1280x720 H.264, 100 frames at 25
// fps, keyframes at 0 s and 2 s) ingested as if a camera had sent it from
// exampleStart on, one frame every 40 ms. A real program would dial Redis
// instead:
//
//	cl, err := chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: "redis://localhost:6379/0"}, chrysalis.Options{})
func exampleClient() *chrysalis.Client {
	mem := cache.NewMemory(cache.Retention{})
	tick := 0
	ing, err := ingest.New(mem, ingest.Config{
		Camera: "cam1",
		Input:  "testdata/clip720.mp4", // read once, as fast as the cache takes it
		// Ingest stamps each packet with Now when it reads it; this clock
		// makes the cache times independent of the machine.
		Now: func() time.Time {
			t := exampleStart.Add(time.Duration(tick) * 40 * time.Millisecond)
			tick++
			return t
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := ing.Run(context.Background()); err != nil { // returns at the end of the file
		log.Fatal(err)
	}
	return chrysalis.New(mem, chrysalis.Options{})
}

// The README's first snippet: an in-process cache, a camera fed into it in
// one call (here the bundled demo camera; a file or a URL works the same),
// and a loop over the newest frames as 640x360 gray images.
func Example_inProcessCamera() {
	ctx := context.Background()
	mc := cache.NewMemory(cache.Retention{MaxAge: time.Minute})
	defer mc.Close()
	run, err := ingest.Start(ctx, mc, ingest.Config{Camera: "cam1", Input: ingest.DemoInput,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer run.Stop()

	cl := chrysalis.New(mc, chrysalis.Options{})
	cam := cl.Camera("cam1", chrysalis.CameraOptions{Format: chrysalis.GRAY8, Width: 640, Height: 360})
	defer cam.Close()
	var last chrysalis.ID
	for range 3 {
		img, err := cam.WaitLatest(ctx) // never a frame this handle already returned
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(img.Width, img.Height, img.Format, img.ID.Compare(last) > 0)
		last = img.ID
		img.Release() // optional: recycles the buffer
	}
	// Output:
	// 640 360 gray8 true
	// 640 360 gray8 true
	// 640 360 gray8 true
}

// The README's graph: the newest frames of a live camera, throttled to 10
// a second, fan out to JPEGs (one a second) and to a motion detector whose
// triggers replay [t-2s, t+2s] of the camera's packets into MP4 clips,
// without decoding them. Run returns nil when its context ends: a planned
// stop.
func Example_graph() {
	ctx := context.Background()
	mc := cache.NewMemory(cache.Retention{MaxAge: time.Minute})
	defer mc.Close()
	run, err := ingest.Start(ctx, mc, ingest.Config{Camera: "cam1", Input: ingest.DemoInput,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer run.Stop()
	cl := chrysalis.New(mc, chrysalis.Options{})
	dir, err := os.MkdirTemp("", "graph-example-*")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	g := flow.New(flow.Options{Logger: slog.New(slog.DiscardHandler)})
	cam := g.Source("camera", source.Live(cl, "cam1", chrysalis.CameraOptions{}))
	fast := g.Op("throttle", operator.Throttle(10), cam)
	jpegs := sink.ImageFiles(dir, sink.ImageOptions{Every: time.Second})
	g.Sink("jpeg", jpegs, fast)
	mot := g.Op("motion", &operator.Motion{}, fast)
	rep := &replay.Window{Client: cl, Camera: "cam1", Pre: 2 * time.Second, Post: 2 * time.Second, Packets: true}
	g.Sink("clips", rep.Into(sink.Clips(dir, sink.ClipOptions{})), mot, flow.Edge{Buffer: 4, Policy: flow.Block})

	rctx, cancel := context.WithTimeout(ctx, 2500*time.Millisecond)
	defer cancel()
	err = g.Run(rctx) // first error cancels the graph; returns after every goroutine exited
	fmt.Println("run:", err, "jpegs:", jpegs.Written() >= 2)
	// Output:
	// run: <nil> jpegs: true
}

// since formats t relative to the example camera's first frame.
func since(t time.Time) string { return fmt.Sprintf("+%dms", t.Sub(exampleStart).Milliseconds()) }

func ExampleCamera_Probe() {
	cl := exampleClient()
	defer cl.Cache().Close()
	cam := cl.Camera("cam1", chrysalis.CameraOptions{})
	defer cam.Close()

	p, err := cam.Probe(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("span:", since(p.Start()), "to", since(p.End()), "=", p.Duration())
	fmt.Printf("frames: %d (%d keyframes), %.2f fps\n", p.Frames, p.Keyframes, p.FPS)
	fmt.Printf("codec: %s %dx%d %s\n", p.Codec, p.Width, p.Height, p.PixFmt)
	// Output:
	// span: +0ms to +3960ms = 3.96s
	// frames: 100 (2 keyframes), 25.25 fps
	// codec: h264 1280x720 yuv420p
}

func ExampleCamera_Latest() {
	cl := exampleClient()
	defer cl.Cache().Close()
	ctx := context.Background()
	// A model that wants 640x360 gray gets it from the decoder's own
	// conversion pass, never a full-size BGR copy.
	cam := cl.Camera("cam1", chrysalis.CameraOptions{Format: chrysalis.GRAY8, Width: 640, Height: 360})
	defer cam.Close()

	img, err := cam.Latest(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("latest: %s %dx%d %s, %d bytes\n", since(img.Time), img.Width, img.Height, img.Format, len(img.Data))
	img.Release() // optional: recycles the buffer

	// Nothing arrived since: no new frame, which is not an error.
	img, err = cam.Latest(ctx)
	fmt.Println("again:", img, err)
	// Output:
	// latest: +3960ms 640x360 gray8, 230400 bytes
	// again: <nil> <nil>
}

func ExampleCamera_Past() {
	cl := exampleClient()
	defer cl.Cache().Close()
	cam := cl.Camera("cam1", chrysalis.CameraOptions{})
	defer cam.Close()

	// One second either side of the keyframe at 2 s. Decoding starts at
	// the keyframe at 0 s; frames before the window are not converted.
	from, to := exampleStart.Add(time.Second), exampleStart.Add(3*time.Second-time.Millisecond)
	n := 0
	var first, last time.Time
	for img, err := range cam.Past(context.Background(), from, to) {
		if err != nil {
			log.Fatal(err)
		}
		if n == 0 {
			first = img.Time
		}
		if img.Keyframe {
			fmt.Println("keyframe at", since(img.Time), img.PictType)
		}
		last = img.Time
		n++
		img.Release()
	}
	fmt.Printf("%d frames, %s to %s\n", n, since(first), since(last))
	// Output:
	// keyframe at +2000ms I
	// 50 frames, +1000ms to +2960ms
}

func ExampleCamera_Screenshot() {
	cl := exampleClient()
	defer cl.Cache().Close()
	cam := cl.Camera("cam1", chrysalis.CameraOptions{})
	defer cam.Close()

	// A screenshot is the keyframe at or before the time: one packet
	// decoded, however long the GOP.
	for _, at := range []time.Duration{1500 * time.Millisecond, 3500 * time.Millisecond} {
		img, err := cam.Screenshot(context.Background(), exampleStart.Add(at))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("at +%dms: keyframe %s, %dx%d %s\n", at.Milliseconds(), since(img.Time), img.Width, img.Height, img.Format)
		img.Release()
	}
	// Before the first frame there is nothing to show.
	_, err := cam.Screenshot(context.Background(), exampleStart.Add(-time.Second))
	fmt.Println("before the start:", errors.Is(err, chrysalis.ErrNotFound))
	// Output:
	// at +1500ms: keyframe +0ms, 1280x720 bgr24
	// at +3500ms: keyframe +2000ms, 1280x720 bgr24
	// before the start: true
}
