package sink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"image/png"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/chryscloud/chrysalis-go/flow"
)

// ImageOptions configures ImageFiles. The zero value writes every image as
// a quality-90 JPEG named "{camera}_{id}.jpg".
type ImageOptions struct {
	// Format is "jpeg" (default; "jpg" is accepted) or "png".
	Format string
	// Quality is the JPEG quality, 1..100. Default 90. Ignored for PNG.
	Quality int
	// Pattern names each file, relative to the directory; it may contain
	// subdirectories, which are created. Placeholders:
	//	{camera} the camera id, with path separators and other characters
	//	         unsafe in file names replaced by '_'
	//	{id}     the frame's cache id "<ms>-<seq>" (ChImage.ID), unique per
	//	         frame of a camera even when frames share a millisecond; an
	//	         image without a cache id uses its Time's ms and seq 0
	//	{ts}     the frame timestamp in UTC milliseconds since the epoch
	//	{time}   the frame timestamp as UTC "20060102T150405.000Z"
	//	{seq}    the number of this file among those written, from 000001
	// Default "{camera}_{id}.jpg" (".png" for PNG). A file never replaces
	// another: when its name is taken (two frames that map to the same
	// name, or a file already there), it gets "_2", "_3"... before the
	// extension. The one exception is a pattern with no per-frame
	// placeholder ({id}, {ts}, {time}, {seq}), e.g. "latest.jpg": it names
	// one file that each image replaces atomically.
	Pattern string
	// Every writes at most one image per interval of frame time: an image
	// is written when its timestamp is at least Every after the last one
	// written. 0 (default) writes every image.
	Every time.Duration
	// OnWrite, if set, is called with the path of each file after it was
	// renamed into place, from the sink's goroutine.
	OnWrite func(path string)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// ImageWriter is the sink returned by ImageFiles.
type ImageWriter struct {
	dir     string
	o       ImageOptions
	log     *slog.Logger
	written atomic.Int64
}

var _ flow.Sink = (*ImageWriter)(nil)

// ImageFiles returns a sink that encodes images (BGR24, RGB24 or GRAY8) to
// JPEG or PNG files under dir. Each file is written to a temporary name in
// its directory and renamed into place, so readers never see a partial
// file. Options are validated when Run starts.
func ImageFiles(dir string, o ImageOptions) *ImageWriter {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &ImageWriter{dir: dir, o: o, log: o.Logger}
}

// Written is the number of files written so far; safe from any goroutine.
func (w *ImageWriter) Written() int64 { return w.written.Load() }

func (w *ImageWriter) options() (ImageOptions, error) {
	o := w.o
	switch strings.ToLower(o.Format) {
	case "", "jpeg", "jpg":
		o.Format = "jpeg"
	case "png":
		o.Format = "png"
	default:
		return o, fmt.Errorf("sink: image format %q: want jpeg or png", o.Format)
	}
	if o.Quality == 0 {
		o.Quality = 90
	}
	if o.Quality < 1 || o.Quality > 100 {
		return o, fmt.Errorf("sink: JPEG quality %d out of 1..100", o.Quality)
	}
	if o.Pattern == "" {
		o.Pattern = "{camera}_{id}.jpg"
		if o.Format == "png" {
			o.Pattern = "{camera}_{id}.png"
		}
	}
	if err := checkPatternOf(o.Pattern, imagePlaceholders); err != nil {
		return o, err
	}
	if o.Every < 0 {
		return o, fmt.Errorf("sink: negative Every %v", o.Every)
	}
	return o, nil
}

// Run implements flow.Sink.
func (w *ImageWriter) Run(ctx context.Context, in <-chan flow.Image) error {
	o, err := w.options()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	var (
		px      pixBuf
		last    int64
		started bool
		bw      = bufio.NewWriterSize(nil, 256<<10)
	)
	return each(ctx, in, func(img flow.Image) error {
		ts := img.Time.UnixMilli()
		if o.Every > 0 && started && ts-last < o.Every.Milliseconds() {
			img.Release()
			return nil
		}
		seq := w.written.Load() + 1
		name, err := w.write(filepath.Join(w.dir, expandImagePattern(o.Pattern, img, seq)), img, &px, bw, o)
		img.Release()
		if err != nil {
			return err
		}
		started, last = true, ts
		w.written.Add(1)
		if o.OnWrite != nil {
			o.OnWrite(name)
		}
		return nil
	})
}

// write encodes img into a temporary file next to name and moves it to
// name, or to a free name next to it (see placeNew); it returns the path.
func (w *ImageWriter) write(name string, img flow.Image, px *pixBuf, bw *bufio.Writer, o ImageOptions) (_ string, err error) {
	m, err := px.view(img)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(name)
	if dir != w.dir {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("sink: %w", err)
		}
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("sink: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
		os.Remove(f.Name()) // placed by a hard link, or failed
	}()
	bw.Reset(f)
	if o.Format == "png" {
		err = png.Encode(bw, m)
	} else {
		err = jpeg.Encode(bw, m, &jpeg.Options{Quality: o.Quality})
	}
	if err != nil {
		return "", fmt.Errorf("sink: encoding %s: %w", name, err)
	}
	if err = bw.Flush(); err != nil {
		return "", fmt.Errorf("sink: writing %s: %w", name, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return "", fmt.Errorf("sink: %w", err)
	}
	if err = f.Close(); err != nil {
		return "", fmt.Errorf("sink: writing %s: %w", name, err)
	}
	if !perFrame(o.Pattern) {
		if err = os.Rename(f.Name(), name); err != nil {
			return "", fmt.Errorf("sink: %w", err)
		}
		return name, nil
	}
	return placeNew(f.Name(), name)
}

// perFrame reports whether pattern names each frame's file apart.
func perFrame(pattern string) bool {
	for _, p := range []string{"{id}", "{ts}", "{time}", "{seq}"} {
		if strings.Contains(pattern, p) {
			return true
		}
	}
	return false
}

// maxSuffix bounds the "_N" names placeNew tries.
const maxSuffix = 10000

// placeNew gives the complete file tmp the name name, or name with "_2",
// "_3"... before its extension when that is taken, never replacing an
// existing file, and returns the name used. It hard-links tmp (link fails
// on an existing name, atomically; the caller removes tmp); on a file
// system without hard links it checks for the name and renames.
func placeNew(tmp, name string) (string, error) {
	ext := filepath.Ext(name)
	base := strings.TrimSuffix(name, ext)
	for n := 1; n <= maxSuffix; n++ {
		try := name
		if n > 1 {
			try = base + "_" + strconv.Itoa(n) + ext
		}
		err := os.Link(tmp, try)
		if err == nil {
			return try, nil
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		// No hard links here: check, then rename.
		if _, serr := os.Lstat(try); serr == nil {
			continue
		} else if !errors.Is(serr, fs.ErrNotExist) {
			return "", fmt.Errorf("sink: %w", serr)
		}
		if rerr := os.Rename(tmp, try); rerr != nil {
			return "", fmt.Errorf("sink: %w (link: %v)", rerr, err)
		}
		return try, nil
	}
	return "", fmt.Errorf("sink: %s and %d more files of that name exist", name, maxSuffix-1)
}

// placeholders are the names clip patterns know; image patterns also know
// {id}.
var (
	placeholders      = []string{"{camera}", "{ts}", "{time}", "{seq}"}
	imagePlaceholders = append([]string{"{id}"}, placeholders...)
)

// checkPattern rejects unknown {placeholders} and absolute or escaping
// patterns.
func checkPattern(p string) error { return checkPatternOf(p, placeholders) }

func checkPatternOf(p string, placeholders []string) error {
	if filepath.IsAbs(p) || strings.HasPrefix(filepath.Clean(p), "..") {
		return fmt.Errorf("sink: pattern %q must be relative to the directory", p)
	}
	rest := p
	for _, ph := range placeholders {
		rest = strings.ReplaceAll(rest, ph, "")
	}
	if i := strings.IndexByte(rest, '{'); i >= 0 {
		return fmt.Errorf("sink: pattern %q: unknown placeholder near %q (known: %s)", p, rest[i:], strings.Join(placeholders, " "))
	}
	if filepath.Base(rest) == "" || strings.HasSuffix(p, "/") {
		return errors.New("sink: pattern names no file")
	}
	return nil
}

// expandPattern fills a checked pattern's placeholders.
func expandPattern(p, camera string, t time.Time, seq int64) string {
	t = t.UTC()
	r := strings.NewReplacer(
		"{camera}", safeName(camera),
		"{ts}", strconv.FormatInt(t.UnixMilli(), 10),
		"{time}", t.Format("20060102T150405.000Z"),
		"{seq}", fmt.Sprintf("%06d", seq),
	)
	return r.Replace(p)
}

// expandImagePattern fills a checked image pattern's placeholders.
func expandImagePattern(p string, img flow.Image, seq int64) string {
	id := img.ID
	if id.IsZero() {
		id.MS = uint64(img.Time.UnixMilli())
	}
	p = strings.ReplaceAll(p, "{id}", strconv.FormatUint(id.MS, 10)+"-"+strconv.FormatUint(id.Seq, 10))
	return expandPattern(p, img.Camera, img.Time, seq)
}

// safeName replaces characters that are unsafe in a file name.
func safeName(s string) string {
	if s == "" || s == "." || s == ".." {
		return "camera"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '/' || r == '\\' || r == ':' || r == '*' || r == '?' || r == '"' || r == '<' || r == '>' || r == '|' || r < 0x20:
			return '_'
		}
		return r
	}, s)
}
