// Record-on-motion writes an MP4 clip of every motion event, starting a
// little before the motion and ending a little after it:
//
//	camera ── throttle 10 fps ── motion ── window replay [t-pre, t+post] ── clips (MP4)
//
// The detector looks at small gray frames, cheap to compare; the clips are
// cut from the cache, so they include the seconds before the trigger, and
// they are remuxed from the camera's original H.264 packets: full quality,
// nothing re-encoded.
//
// The replay hands on the cached packets without decoding them (packet
// mode): the clips are remuxed, so their pixels are never needed. Each
// clip starts at the keyframe at or before its window, so it keeps the
// whole pre-roll, and holds one event: a window that does not continue the
// previous one starts a new file. Stopping (-duration or Ctrl-C) cuts a
// pending window at the newest cached frame and finalises its clip.
//
// On the demo camera a box crosses the picture between 4 s and 7 s of every
// 10 s loop, so the first event is recorded about 9 s after the start. A
// clip is finished (and printed) when the next event starts a new one, or
// at the end (-duration or Ctrl-C), so it is a valid file even if cut
// short.
//
//	go run ./examples/record-on-motion
//	go run ./examples/record-on-motion -duration 1m -out /tmp/clips
//	go run ./examples/record-on-motion -redis-url redis://localhost:6379 -camera door -threshold 4
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/examples/internal/excam"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/operator"
	"github.com/chryscloud/chrysalis-go/replay"
	"github.com/chryscloud/chrysalis-go/sink"
	"github.com/chryscloud/chrysalis-go/source"
)

func main() {
	f := excam.Register(15 * time.Second)
	threshold := flag.Float64("threshold", 1.5, "motion score (mean gray difference, 0..255) that triggers a clip")
	pre := flag.Duration("pre", 2*time.Second, "clip time before the trigger")
	post := flag.Duration("post", 2*time.Second, "clip time after the trigger")
	out := flag.String("out", filepath.Join(os.TempDir(), "chrysalis-clips"), "directory for the clips")
	flag.Parse()
	if err := run(f, *threshold, *pre, *post, *out); err != nil {
		fmt.Fprintln(os.Stderr, "record-on-motion:", err)
		os.Exit(1)
	}
}

func run(f *excam.Flags, threshold float64, pre, post time.Duration, out string) error {
	ctx, stop := f.Context()
	defer stop()
	cl, closeCache, err := f.Open(ctx)
	if err != nil {
		return err
	}
	defer closeCache()

	// Detection: 320-wide gray frames straight from the decoder, 10 a
	// second. Motion emits only the frames that trigger, at most one per
	// MinInterval of frame time.
	live := source.Live(cl, f.Camera, chrysalis.CameraOptions{Format: chrysalis.GRAY8, Width: 320})
	motion := &operator.Motion{Threshold: threshold, MinInterval: 3 * time.Second}

	// Recording: for a trigger at t, replay the packets of [t-pre, t+post]
	// from the cache without decoding them (overlapping windows merge), and
	// remux each event into its own MP4. Into runs the replay and the clip
	// writer as one sink, so stopping keeps the last window.
	rep := &replay.Window{Client: cl, Camera: f.Camera, Pre: pre, Post: post, Packets: true}
	var clips *sink.ClipWriter
	clips = sink.Clips(out, sink.ClipOptions{
		OnClip: func(path string) {
			c := clips.Clips()
			ci := c[len(c)-1]
			fmt.Printf("clip %s frames %d ids %s..%s packets %d..%d\n", path, ci.Frames, ci.First, ci.Last, ci.FirstNumber, ci.LastNumber)
		},
	})

	g := flow.New(flow.Options{})
	cam := g.Source("camera", live)
	thr := g.Op("throttle", operator.Throttle(10), cam)
	mot := g.Op("motion", motion, thr)
	// Triggers are rare and each one matters: block rather than drop. The
	// replay reads the cache, it never holds the camera back.
	g.Sink("clips", rep.Into(clips), mot, flow.Edge{Buffer: 4, Policy: flow.Block})

	fmt.Printf("watching %q for motion (threshold %.1f) for %s; clips go to %s\n", f.Camera, threshold, f.Duration, out)
	err = g.Run(ctx) // nil at -duration or Ctrl-C
	fmt.Printf("examined %d frames: %d triggers, %d windows replayed (%d packets, %d skipped), clips written: %d\n",
		motion.Frames(), motion.Triggers(), rep.Windows(), rep.Frames(), rep.Skipped(), len(clips.Files()))
	return err
}
