package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/mp4"
	"github.com/chryscloud/chrysalis-go/record"
	"github.com/chryscloud/chrysalis-go/sink"
)

// exportResult is export's --json output.
type exportResult struct {
	Camera string `json:"camera"`
	Output string `json:"output"`
	// Frames written (remux) or decoded (images); StartMS/EndMS the first
	// and last frame's timestamps.
	Frames int64 `json:"frames"`
	// Files is the number of image files written (images only): one per
	// decoded frame.
	Files   int64   `json:"files,omitempty"`
	StartMS int64   `json:"start_timestamp"`
	EndMS   int64   `json:"end_timestamp"`
	Seconds float64 `json:"duration"`
	Mode    string  `json:"mode"` // "remux" (MP4) or "images"
	// AudioFrames is the number of AAC frames muxed (MP4 from a cache
	// with audio: the cloud layout).
	AudioFrames int64 `json:"audio_frames,omitempty"`
	// Missing counts the window's video packets whose frames are not in
	// the output: not decodable after a gap in the packet numbers or a
	// corrupt packet (until the next keyframe), or before the window's
	// first keyframe. Gaps and Corrupt say why (images; a remux cannot
	// tell a corrupt packet).
	Missing int64 `json:"missing_frames,omitempty"`
	Gaps    int64 `json:"gaps,omitempty"`
	Corrupt int64 `json:"corrupt_packets,omitempty"`
	// CutMS: a codec change at this cache time (unix ms) ended the file
	// before --to (also logged).
	CutMS int64 `json:"cut_at,omitempty"`
}

func newExportCmd() *cobra.Command {
	var rf readFlags
	var from, to, out, format, archive string
	var asJSON bool
	c := &cobra.Command{
		Use:   "export --camera ID --from TIME --to TIME -o out.mp4|DIR/",
		Short: "Export a time window as an MP4 (remuxed, no re-encode) or as decoded images",
		Long: `export writes the camera's frames between --from and --to.

With -o FILE.mp4 the cached packets are remuxed without re-encoding. An MP4 can
only start on a keyframe, so the file starts at the keyframe at or before
--from (up to one GOP earlier) and ends with the last frame at or before --to.
When the cache holds the camera's audio (the cloud layout's AAC stream), the
file gets an AAC track covering the same span, in sync with the video.

With -o DIR/ (a trailing slash or an existing directory) every frame whose
timestamp falls in [--from, --to] is decoded and written as an image
(--format jpg or png) named <camera>_<unix ms>-<seq>.<ext> after its cache id
<ms>-<seq>, so frames sharing a millisecond get a file each. An existing file
is never replaced: a taken name gets _2, _3... before the extension. export
prints how many files it wrote, one per decoded frame.

TIME is RFC 3339, unix milliseconds, or relative to now such as -10s, between
1970 and the year 9999.
With --archive DIR (the --out of chrysalis record) an MP4 export reads the
part of the window the cache has already trimmed from the recorder's archived
segments, frame for frame the packets the cache held, and the rest from the
cache.

A progress bar shows when stderr is a terminal.`,
		Example: `  chrysalis export --camera cam1 --from -30s --to now -o last30s.mp4
  chrysalis export --camera cam1 --from 2026-11-25T12:00:00Z --to 2026-11-25T12:00:05Z -o frames/ --format png`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("no output: pass -o out.mp4 or -o DIR/")
			}
			toDir := isDirTarget(out)
			if !toDir && strings.ToLower(filepath.Ext(out)) != ".mp4" {
				return usagef("-o %q: write to a .mp4 file or to a directory (end it with /)", out)
			}
			if archive != "" && toDir {
				return usagef("--archive works with -o FILE.mp4 only")
			}
			if format != "jpg" && format != "png" {
				return usagef("--format %q: want jpg or png", format)
			}
			now := time.Now()
			start, err := parseTime("from", from, now)
			if err != nil {
				return err
			}
			end, err := parseTime("to", to, now)
			if err != nil {
				return err
			}
			if start.After(end) {
				return usagef("--from %s is after --to %s", start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano))
			}
			cl, done, err := rf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			var res exportResult
			if toDir {
				res, err = exportImages(cmd.Context(), cl, rf.camera, start, end, out, format)
			} else {
				res, err = exportMP4(cmd.Context(), cl, rf.camera, start, end, out, archive)
			}
			if err != nil {
				return err
			}
			if res.Missing > 0 {
				// Frames are missing: say so on stderr, JSON or not, so a
				// short export never passes for a whole one.
				fmt.Fprintf(cmd.ErrOrStderr(), "chrysalis export: warning: %d frames of the window are missing from the output (%s)\n",
					res.Missing, missingWhy(res))
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(w).Encode(res)
			}
			files := ""
			if toDir {
				files = fmt.Sprintf(", %d files written", res.Files)
			}
			if res.AudioFrames > 0 {
				files = fmt.Sprintf(", %d audio frames", res.AudioFrames)
			}
			_, err = fmt.Fprintf(w, "%s: %d frames of %s (%s%s, %.2fs from %s)\n", res.Output, res.Frames, res.Camera, res.Mode,
				files, res.Seconds, time.UnixMilli(res.StartMS).UTC().Format(time.RFC3339Nano))
			return err
		},
	}
	rf.register(c)
	f := c.Flags()
	f.StringVar(&from, "from", "", "window start TIME (required)")
	f.StringVar(&to, "to", "now", "window end TIME")
	f.StringVarP(&out, "output", "o", "", "FILE.mp4, or DIR/ for images")
	f.StringVar(&format, "format", "jpg", "image format for -o DIR/: jpg or png")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.StringVar(&archive, "archive", "", "read what the cache has trimmed from this record archive (MP4 only)")
	return c
}

// missingWhy says why an export's frames are missing.
func missingWhy(r exportResult) string {
	var why []string
	if r.Gaps > 0 {
		why = append(why, plural(r.Gaps, "gap")+" in the packet numbers")
	}
	if r.Corrupt > 0 {
		why = append(why, plural(r.Corrupt, "corrupt packet"))
	}
	if len(why) == 0 {
		return "no keyframe before them in the window"
	}
	return strings.Join(why, ", ") + "; decoding skips to the next keyframe after each"
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// progress returns a progress bar on stderr when it is a terminal, or nil.
func progress(total int64, what string) *progressbar.ProgressBar {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(max(total, 1), progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
}

// estimate guesses the frames in a window from the camera's probe, for
// the progress bar.
func estimate(ctx context.Context, cam *chrysalis.Camera, start, end time.Time) int64 {
	p, err := cam.Probe(ctx)
	if err != nil || p.FPS <= 0 {
		return 0
	}
	return int64(end.Sub(start).Seconds()*p.FPS) + 1
}

func exportMP4(ctx context.Context, cl *chrysalis.Client, camera string, start, end time.Time, out, archive string) (exportResult, error) {
	res := exportResult{Camera: camera, Output: out, Mode: "remux"}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return res, err
	}
	cam := cl.Camera(camera, chrysalis.CameraOptions{})
	defer cam.Close()
	bar := progress(estimate(ctx, cam, start, end), "export")
	var tick func()
	if bar != nil {
		tick = func() { bar.Add(1) }
	}
	// Write next to out and rename on success: a failed export (Redis
	// frozen, Ctrl-C) leaves no finalised but partial file at -o, and an
	// existing file there stays as it was.
	tmp, err := os.CreateTemp(filepath.Dir(out), ".chrysalis-export-*.mp4")
	if err != nil {
		return res, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name()) // a no-op after the rename
	src := cl.Cache()
	if archive != "" {
		src = record.WithArchive(src, archive)
	}
	st, err := mp4.Export(ctx, src, camera, cache.IDAt(start), cache.ID{MS: uint64(end.UnixMilli()), Seq: ^uint64(0)},
		tmp.Name(), sink.VideoOptions{}, tick)
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return res, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return res, err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return res, err
	}
	res.Frames, res.StartMS, res.EndMS, res.AudioFrames, res.CutMS = st.Frames, st.FirstMS, st.LastMS, st.AudioFrames, st.CutMS
	res.Missing, res.Gaps = st.Skipped, st.Gaps
	res.Seconds = float64(res.EndMS-res.StartMS) / 1000
	return res, nil
}

// exportImages decodes the window and writes each frame through
// sink.ImageFiles, named by its cache id; it counts the frames decoded and
// the files written, which must agree.
func exportImages(ctx context.Context, cl *chrysalis.Client, camera string, start, end time.Time, dir, format string) (exportResult, error) {
	res := exportResult{Camera: camera, Output: dir, Mode: "images"}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	cam := cl.Camera(camera, chrysalis.CameraOptions{})
	defer cam.Close()
	bar := progress(estimate(ctx, cam, start, end), "export")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := sink.ImageFiles(dir, sink.ImageOptions{Format: format, Quality: 92, OnWrite: func(string) {
		if bar != nil {
			bar.Add(1)
		}
	}})
	in := make(chan flow.Image)
	ran := make(chan error, 1)
	go func() { ran <- w.Run(ctx, in) }()
	var err, sinkErr error
	sinkDone := false
read:
	for img, perr := range cam.Past(ctx, start, end) {
		if perr != nil {
			err = perr
			break
		}
		if res.Frames == 0 {
			res.StartMS = img.TimestampMS()
		}
		res.EndMS = img.TimestampMS()
		res.Frames++
		select {
		case in <- img: // the sink releases it
		case sinkErr = <-ran:
			img.Release()
			sinkDone = true
			break read
		}
	}
	close(in)
	if !sinkDone {
		sinkErr = <-ran
	}
	if bar != nil {
		bar.Finish()
	}
	res.Files = w.Written()
	cs := cam.Stats()
	res.Missing, res.Gaps, res.Corrupt = cs.Skipped+cs.Corrupt, cs.Gaps, cs.Corrupt
	switch {
	case err != nil:
		return res, err
	case sinkErr != nil:
		return res, sinkErr
	case res.Frames == 0:
		return res, fmt.Errorf("camera %q: no frames in the window: %w", camera, cache.ErrNotFound)
	case res.Files != res.Frames:
		return res, fmt.Errorf("camera %q: decoded %d frames but wrote %d files", camera, res.Frames, res.Files)
	}
	res.Seconds = float64(res.EndMS-res.StartMS) / 1000
	return res, nil
}
