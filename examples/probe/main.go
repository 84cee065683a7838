// Probe prints what the frame cache holds for a camera: the time span it
// covers, the frame rate, the frame and keyframe counts, and the codec. It
// is the Python SDK's conn.Probe(camera).
//
//	go run ./examples/probe                    # the bundled demo camera, in-process
//	go run ./examples/probe -redis-url redis://localhost:6379 -camera door
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/examples/internal/excam"
)

func main() {
	f := excam.Register(10 * time.Second)
	flag.Parse()
	if err := run(f); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

func run(f *excam.Flags) error {
	ctx, stop := f.Context()
	defer stop()
	cl, closeCache, err := f.Open(ctx)
	if err != nil {
		return err
	}
	defer closeCache()

	// A Camera is one reader's handle on a camera; Probe only reads the
	// cache's bookkeeping, it decodes nothing.
	cam := cl.Camera(f.Camera, chrysalis.CameraOptions{})
	defer cam.Close()

	// The in-process demo camera has only just started: let it cache a
	// couple of seconds first so that the rate means something.
	if _, err := excam.WaitForHistory(ctx, cam, 2*time.Second); err != nil {
		return err
	}
	p, err := cam.Probe(ctx)
	if err != nil {
		return err
	}
	// Start and End are the cache timestamps (UTC, ms) of the oldest and
	// newest frames; FPS is Frames / Duration, as the edge proxy computes it.
	fmt.Printf("camera     %s\n", p.Camera)
	fmt.Printf("start      %s\n", p.Start().Format(time.RFC3339Nano))
	fmt.Printf("end        %s  (%s ago)\n", p.End().Format(time.RFC3339Nano), time.Since(p.End()).Round(time.Millisecond))
	fmt.Printf("duration   %s\n", p.Duration())
	fmt.Printf("frames     %d, %d keyframes\n", p.Frames, p.Keyframes)
	fmt.Printf("fps        %.1f\n", p.FPS)
	fmt.Printf("codec      %s %dx%d %s\n", p.Codec, p.Width, p.Height, p.PixFmt)
	return nil
}
