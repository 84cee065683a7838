package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	chrysalis "github.com/chryscloud/chrysalis-go"
)

// readFlags are shared by the commands that read a camera.
type readFlags struct {
	redisFlags
	camera  string
	verbose bool
	timeout time.Duration
}

func (f *readFlags) register(c *cobra.Command) {
	f.redisFlags.register(c)
	c.Flags().StringVar(&f.camera, "camera", "", "camera id (required)")
	c.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "debug logging")
	c.Flags().DurationVar(&f.timeout, "connect-timeout", 10*time.Second, "give up connecting to Redis after this long")
}

// open validates the shared flags and connects.
func (f *readFlags) open(ctx context.Context) (*chrysalis.Client, func(), error) {
	if f.camera == "" {
		return nil, nil, usagef("no camera: pass --camera ID")
	}
	log, resetLog := setupLogging(f.verbose)
	if f.url == "" {
		resetLog()
		return nil, nil, usagef("no Redis: pass --redis-url redis://host:6379 or set CHRYSALIS_REDIS_URL")
	}
	if err := checkRedisURL(f.url); err != nil {
		resetLog()
		return nil, nil, err
	}
	co, err := f.connOptions()
	if err != nil {
		resetLog()
		return nil, nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	cl, err := chrysalis.DialRedis(dctx, co, chrysalis.Options{Logger: log})
	if err != nil {
		resetLog()
		return nil, nil, err
	}
	return cl, func() { cl.Close(); resetLog() }, nil
}

// openCamera opens the client and the --camera handle; done closes both.
func (f *readFlags) openCamera(ctx context.Context, o chrysalis.CameraOptions) (*chrysalis.Camera, func(), error) {
	cl, done, err := f.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	cam := cl.Camera(f.camera, o)
	return cam, func() { cam.Close(); done() }, nil
}

func newProbeCmd() *cobra.Command {
	var rf readFlags
	var asJSON bool
	c := &cobra.Command{
		Use:   "probe --camera ID [--json]",
		Short: "Show what the cache holds for a camera: span, fps, frames, codec, size",
		Long: `probe reports, as the Chrysalis edge proxy computes it: the first and last
timestamps in the cache (UTC ms), duration = last - first, fps = frames /
duration, the frame and keyframe counts, codec, width and height.`,
		Example: `  chrysalis probe --redis-url redis://localhost:6379 --camera cam1
  chrysalis probe --camera cam1 --json | jq .fps`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cam, done, err := rf.openCamera(cmd.Context(), chrysalis.CameraOptions{})
			if err != nil {
				return err
			}
			defer done()
			p, err := cam.Probe(cmd.Context())
			if err != nil {
				return err
			}
			return printProbe(cmd.OutOrStdout(), p, asJSON)
		},
	}
	rf.register(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printProbe(w io.Writer, p chrysalis.Probe, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	_, err := fmt.Fprintf(w, "camera     %s\nstart      %s (%d)\nend        %s (%d)\nduration   %.3fs\nfps        %.2f\nframes     %d\nkeyframes  %d\ncodec      %s %dx%d %s\n",
		p.Camera, p.Start().Format(time.RFC3339Nano), p.StartMS, p.End().Format(time.RFC3339Nano), p.EndMS,
		p.DurationSec, p.FPS, p.Frames, p.Keyframes, p.Codec, p.Width, p.Height, p.PixFmt)
	return err
}

// imageResult is the --json output of latest and snapshot.
type imageResult struct {
	Camera      string `json:"camera"`
	File        string `json:"file"`
	TimestampMS int64  `json:"timestamp"`
	Time        string `json:"time"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	Keyframe    bool   `json:"keyframe"`
}

func reportImage(w io.Writer, file string, img *chrysalis.ChImage, asJSON bool) error {
	r := imageResult{Camera: img.Camera, File: file, TimestampMS: img.TimestampMS(), Time: img.Time.Format(time.RFC3339Nano),
		Width: img.Width, Height: img.Height, Keyframe: img.Keyframe}
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	_, err := fmt.Fprintf(w, "%s: %s %dx%d at %s (%d)\n", r.File, r.Camera, r.Width, r.Height, r.Time, r.TimestampMS)
	return err
}

func newLatestCmd() *cobra.Command {
	var rf readFlags
	var out string
	var asJSON bool
	var width, height int
	c := &cobra.Command{
		Use:   "latest --camera ID -o out.jpg|out.png",
		Short: "Write the camera's newest frame to an image file",
		Example: `  chrysalis latest --camera cam1 -o now.jpg
  chrysalis latest --camera cam1 -o small.png --width 640`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("no output: pass -o out.jpg or -o out.png")
			}
			if _, err := imageFormat(out); err != nil {
				return err
			}
			co := chrysalis.CameraOptions{Width: width, Height: height}
			if err := co.Validate(); err != nil {
				return usagef("--width %d --height %d: want 0 (the source's) up to %d", width, height, chrysalis.MaxImageSide)
			}
			cam, done, err := rf.openCamera(cmd.Context(), co)
			if err != nil {
				return err
			}
			defer done()
			if width > 0 || height > 0 {
				p, err := cam.Probe(cmd.Context())
				if err != nil {
					return err
				}
				if err := co.CheckSize(p.Width, p.Height); err != nil {
					return usagef("--width %d --height %d: at most %d times the camera's %dx%d", width, height, chrysalis.MaxUpscale, p.Width, p.Height)
				}
			}
			img, err := cam.Latest(cmd.Context())
			if err != nil {
				return err
			}
			if img == nil {
				return fmt.Errorf("camera %q: no decodable frame yet (waiting for a keyframe): %w", rf.camera, chrysalis.ErrNotFound)
			}
			if err := writeImage(out, img); err != nil {
				return err
			}
			return reportImage(cmd.OutOrStdout(), out, img, asJSON)
		},
	}
	rf.register(c)
	c.Flags().StringVarP(&out, "output", "o", "", "output image (.jpg, .jpeg or .png)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	c.Flags().IntVar(&width, "width", 0, "resize to this width (keeps aspect if --height is 0)")
	c.Flags().IntVar(&height, "height", 0, "resize to this height")
	return c
}

func newSnapshotCmd() *cobra.Command {
	var rf readFlags
	var out, at string
	var asJSON bool
	c := &cobra.Command{
		Use:   "snapshot --camera ID --at TIME -o out.jpg|out.png",
		Short: "Write the keyframe nearest before TIME to an image file",
		Long: `snapshot decodes the keyframe at or nearest before TIME (as the Python SDK's
Screenshot did). TIME is RFC 3339, unix milliseconds, or relative to now such
as -5s, between 1970 and the year 9999.`,
		Example: `  chrysalis snapshot --camera cam1 --at -10s -o ten-seconds-ago.jpg
  chrysalis snapshot --camera cam1 --at 2026-11-25T12:00:00Z -o noon.png`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("no output: pass -o out.jpg or -o out.png")
			}
			if _, err := imageFormat(out); err != nil {
				return err
			}
			t, err := parseTime("at", at, time.Now())
			if err != nil {
				return err
			}
			cam, done, err := rf.openCamera(cmd.Context(), chrysalis.CameraOptions{})
			if err != nil {
				return err
			}
			defer done()
			img, err := cam.Screenshot(cmd.Context(), t)
			if err != nil {
				return err
			}
			if err := writeImage(out, img); err != nil {
				return err
			}
			return reportImage(cmd.OutOrStdout(), out, img, asJSON)
		},
	}
	rf.register(c)
	c.Flags().StringVarP(&out, "output", "o", "", "output image (.jpg, .jpeg or .png)")
	c.Flags().StringVar(&at, "at", "", "TIME: RFC 3339, unix ms, or relative like -5s (required)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}

// isDirTarget reports whether -o names a directory (ends in / or exists as
// one).
func isDirTarget(out string) bool {
	if strings.HasSuffix(out, "/") || strings.HasSuffix(out, string(filepath.Separator)) {
		return true
	}
	st, err := os.Stat(out)
	return err == nil && st.IsDir()
}
