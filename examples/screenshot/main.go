// Screenshot grabs the picture of a camera at a past moment and saves it as
// a JPEG. Like the Python SDK's screenshot, it decodes the keyframe nearest
// before (or at) that moment: one packet, no matter how long the GOP, so it
// is cheap enough to call for thumbnails and alerts.
//
//	go run ./examples/screenshot                   # the demo camera, 3 s ago
//	go run ./examples/screenshot -ago 10s -width 640
//	go run ./examples/screenshot -redis-url redis://localhost:6379 -camera door -at 2026-01-02T15:04:05Z
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
	ago := flag.Duration("ago", 3*time.Second, "take the picture this long before the newest frame")
	at := flag.String("at", "", "take the picture at this RFC 3339 time instead of -ago")
	width := flag.Int("width", 0, "resize to this width, keeping the aspect ratio (0: full size)")
	out := flag.String("out", filepath.Join(os.TempDir(), "chrysalis-screenshot.jpg"), "JPEG file to write")
	flag.Parse()
	if err := run(f, *ago, *at, *width, *out); err != nil {
		fmt.Fprintln(os.Stderr, "screenshot:", err)
		os.Exit(1)
	}
}

func run(f *excam.Flags, ago time.Duration, at string, width int, out string) error {
	ctx, stop := f.Context()
	defer stop()
	cl, closeCache, err := f.Open(ctx)
	if err != nil {
		return err
	}
	defer closeCache()

	// Width with Height 0 keeps the aspect ratio; the resize happens in the
	// decoder's pixel conversion, so a small thumbnail is never a full-size
	// copy first.
	cam := cl.Camera(f.Camera, chrysalis.CameraOptions{Width: width})
	defer cam.Close()

	var t time.Time
	if at != "" {
		if t, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return fmt.Errorf("-at: %w", err)
		}
	} else {
		// Relative to the newest cached frame. The demo camera starts empty:
		// wait until it has cached a second more than that, so the
		// keyframe found is not simply the oldest frame.
		p, err := excam.WaitForHistory(ctx, cam, ago+time.Second)
		if err != nil {
			return err
		}
		t = p.End().Add(-ago)
	}

	img, err := cam.Screenshot(ctx, t)
	if err != nil {
		return err // wraps chrysalis.ErrNotFound when no keyframe is that old
	}
	defer img.Release()

	fh, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := jpeg.Encode(fh, img.ToRGBA(), &jpeg.Options{Quality: 90}); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	fmt.Printf("asked for  %s\n", t.Format(time.RFC3339Nano))
	fmt.Printf("keyframe   %s (%s earlier), picture type %s\n", img.Time.Format(time.RFC3339Nano),
		t.Sub(img.Time).Round(time.Millisecond), img.PictType)
	fmt.Printf("image      %dx%d %s\n", img.Width, img.Height, img.Format)
	fmt.Printf("wrote      %s\n", out)
	return nil
}
