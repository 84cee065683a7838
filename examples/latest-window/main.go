// Latest-window shows a camera's latest image in an OpenCV window, the
// Python SDK's
//
//	while True:
//	    img = conn.VideoLatestImage(camera)
//	    if img is not None:
//	        cv2.imshow("chrysalis", img.data)
//	        cv2.waitKey(1)
//
// By default it declares that as a two-node graph: source.Live follows the
// camera and emits only frames it has not shown before, skipping what the
// window could not keep up with, and gocvwin.Window shows them. With -loop it
// runs the plain loop above instead, with the same calls you would make in
// your own code (cam.WaitLatest, gocvwin.ToMat, window.IMShow).
//
// Esc or closing the window ends it early. It needs a display (DISPLAY) and
// OpenCV (pkg-config opencv4).
//
//	go run ./examples/latest-window
//	go run ./examples/latest-window -loop -duration 1m
//	go run ./examples/latest-window -redis-url redis://localhost:6379 -camera door
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"gocv.io/x/gocv"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/examples/internal/excam"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/sink/gocvwin"
	"github.com/chryscloud/chrysalis-go/source"
)

func main() {
	f := excam.Register(15 * time.Second)
	loop := flag.Bool("loop", false, "use a plain WaitLatest loop instead of a graph")
	flag.Parse()
	if err := run(f, *loop); err != nil {
		fmt.Fprintln(os.Stderr, "latest-window:", err)
		os.Exit(1)
	}
}

func run(f *excam.Flags, loop bool) error {
	ctx, stop := f.Context()
	defer stop()
	cl, closeCache, err := f.Open(ctx)
	if err != nil {
		return err
	}
	defer closeCache()

	// Full-size BGR24, OpenCV's native layout, is the default. For a smaller
	// window ask for it here, e.g. Width: 640: the resize happens in the
	// same pass as the pixel conversion.
	opts := chrysalis.CameraOptions{}
	if loop {
		return showLoop(ctx, cl, f.Camera, opts)
	}
	return showGraph(ctx, cl, f.Camera, opts)
}

// showGraph: camera -> window, over a drop-oldest edge of one image, so the
// window always gets the newest frame and never holds the camera back.
func showGraph(ctx context.Context, cl *chrysalis.Client, camera string, opts chrysalis.CameraOptions) error {
	// The window sink returns when the user presses Esc or closes the
	// window, but a graph runs until its sources stop, and a live camera
	// never does: cancel the graph then.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	win := gocvwin.Window("chrysalis: "+camera, gocvwin.WindowOptions{})
	untilClosed := flow.SinkFunc(func(ctx context.Context, in <-chan flow.Image) error {
		defer cancel()
		return win.Run(ctx, in)
	})

	g := flow.New(flow.Options{})
	cam := g.Source("camera", source.Live(cl, camera, opts))
	g.Sink("window", untilClosed, cam, flow.Edge{Buffer: 1, Policy: flow.DropOldest})
	start := time.Now()
	err := g.Run(ctx) // until the window closes, -duration or Ctrl-C
	for _, s := range g.Stats() {
		if s.Name == "window" {
			fmt.Printf("showed %d frames in %s (%d dropped: newer ones replaced them)\n",
				s.In-s.Dropped, time.Since(start).Round(time.Millisecond), s.Dropped)
		}
	}
	return err // nil when it stopped as planned (-duration, Ctrl-C)
}

// showLoop is the same thing without a graph.
func showLoop(ctx context.Context, cl *chrysalis.Client, camera string, opts chrysalis.CameraOptions) error {
	// HighGUI wants all its calls from one OS thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	win := gocv.NewWindow("chrysalis: " + camera)
	defer win.Close()

	cam := cl.Camera(camera, opts)
	defer cam.Close()
	start, shown := time.Now(), 0
	defer func() { fmt.Printf("showed %d frames in %s\n", shown, time.Since(start).Round(time.Millisecond)) }()
	for {
		// WaitLatest blocks until a frame newer than the last one it returned
		// is in the cache. Latest is the non-blocking variant: it returns
		// (nil, nil) when there is no new frame yet, which is not an error.
		img, err := cam.WaitLatest(ctx)
		if ctx.Err() != nil {
			return nil // -duration or Ctrl-C: the planned end
		}
		if err != nil {
			return err
		}
		// ToMat wraps the pixels without copying: close the Mat before
		// releasing the image, whose buffer goes back to a pool.
		m, err := gocvwin.ToMat(img)
		if err != nil {
			img.Release()
			return err
		}
		win.IMShow(m)
		m.Close()
		img.Release()
		shown++
		// WaitKey(1) also lets the window draw and handle its events.
		if key := win.WaitKey(1); key == 27 || win.GetWindowProperty(gocv.WindowPropertyVisible) < 1 {
			return nil // Esc, or the window was closed
		}
	}
}
