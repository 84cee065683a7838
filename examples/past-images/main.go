// Past-images reads the last few seconds of a camera from the frame cache
// and writes some of the frames as JPEGs, the Python SDK's
// conn.VideoPastImages(camera, timestamp_from, timestamp_to).
//
// Camera.Past is an iterator over [start, end]: it decodes from the
// keyframe at or before start, yields every frame in the window, oldest
// first, and stops cleanly when you break out of the loop.
//
//	go run ./examples/past-images                     # 3 s of the demo camera
//	go run ./examples/past-images -last 10s -every 2s -out /tmp/past
//	go run ./examples/past-images -redis-url redis://localhost:6379 -camera door -last 30s
package main

import (
	"flag"
	"fmt"
	"image/jpeg"
	"os"
	"path/filepath"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/examples/internal/excam"
)

func main() {
	f := excam.Register(15 * time.Second)
	last := flag.Duration("last", 3*time.Second, "read this much video, ending at the newest frame")
	every := flag.Duration("every", time.Second, "write one JPEG per this much video")
	out := flag.String("out", filepath.Join(os.TempDir(), "chrysalis-past-images"), "directory for the JPEGs")
	flag.Parse()
	if err := run(f, *last, *every, *out); err != nil {
		fmt.Fprintln(os.Stderr, "past-images:", err)
		os.Exit(1)
	}
}

func run(f *excam.Flags, last, every time.Duration, out string) error {
	ctx, stop := f.Context()
	defer stop()
	cl, closeCache, err := f.Open(ctx)
	if err != nil {
		return err
	}
	defer closeCache()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}

	cam := cl.Camera(f.Camera, chrysalis.CameraOptions{})
	defer cam.Close()

	// The window ends at the newest cached frame (cache time, which is the
	// ingest's clock, not necessarily ours). The demo camera starts empty:
	// wait until it has cached enough.
	p, err := excam.WaitForHistory(ctx, cam, last)
	if err != nil {
		return err
	}
	end := p.End()
	start := end.Add(-last)

	began := time.Now()
	var frames, keyframes int
	var first, newest, lastWritten time.Time
	var files []string
	for img, err := range cam.Past(ctx, start, end) {
		if err != nil {
			// A start the cache already trimmed is a *chrysalis.WindowError
			// wrapping chrysalis.ErrTrimmed.
			return err
		}
		frames++
		if img.Keyframe {
			keyframes++
		}
		if first.IsZero() {
			first = img.Time
		}
		newest = img.Time
		if len(files) == 0 || img.Time.Sub(lastWritten) >= every {
			name, err := writeJPEG(out, img)
			if err != nil {
				img.Release()
				return err
			}
			files = append(files, name)
			lastWritten = img.Time
		}
		// Each image is ours; releasing it recycles its buffer for the next
		// frame (optional: an unreleased image is garbage collected).
		img.Release()
	}
	took := time.Since(began)

	fmt.Printf("window     [%s, %s]\n", start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano))
	fmt.Printf("frames     %d (%d keyframes), %s to %s\n", frames, keyframes,
		first.Format("15:04:05.000"), newest.Format("15:04:05.000"))
	fmt.Printf("decoded    in %s (%.0f frames/s, JPEG writing included)\n", took.Round(time.Millisecond),
		float64(frames)/took.Seconds())
	fmt.Printf("wrote      %d JPEGs to %s\n", len(files), out)
	for _, name := range files {
		fmt.Printf("  %s\n", name)
	}
	return nil
}

// writeJPEG writes img as <camera>_<ms>-<seq>.jpg in dir (the frame's cache id:
// unique even when frames share a millisecond). ToRGBA copies the BGR24
// pixels into the layout the standard encoder is fast on.
func writeJPEG(dir string, img *chrysalis.ChImage) (string, error) {
	name := filepath.Join(dir, fmt.Sprintf("%s_%s.jpg", img.Camera, img.ID))
	fh, err := os.Create(name)
	if err != nil {
		return "", err
	}
	if err := jpeg.Encode(fh, img.ToRGBA(), &jpeg.Options{Quality: 90}); err != nil {
		fh.Close()
		return "", err
	}
	return name, fh.Close()
}
