package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/mp4"
	"github.com/chryscloud/chrysalis-go/sink"
)

// badRequest is a client error (400) with a one-line message.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, a ...any) error { return &badRequest{fmt.Sprintf(format, a...)} }

// httpError answers err as one line of text with a status that says whose
// fault it is.
func (w *Watch) httpError(rw http.ResponseWriter, r *http.Request, err error) {
	var br *badRequest
	code := http.StatusInternalServerError
	switch {
	case errors.As(err, &br), errors.Is(err, cache.ErrBadTime):
		code = http.StatusBadRequest
	case errors.Is(err, cache.ErrUnknownCamera), errors.Is(err, cache.ErrEmpty), errors.Is(err, cache.ErrNotFound),
		errors.Is(err, mp4.ErrNoFrames):
		code = http.StatusNotFound
	case r.Context().Err() != nil:
		return // the client left
	default:
		w.log.Warn("watch: request failed", "path", r.URL.Path, "err", err)
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	rw.Header().Del("Content-Disposition")
	http.Error(rw, msg, code)
}

// parseAt reads a time: unix milliseconds, RFC 3339, or relative to now
// ("-5s", "-1m30s"); empty or "now" is now. A time a cache id cannot name
// (zero, before 1970, after year 9999) is a bad request.
func parseAt(s string, now time.Time) (time.Time, error) {
	t, err := parseAtText(s, now)
	if err != nil {
		return time.Time{}, err
	}
	if err := cache.CheckTime(t); err != nil {
		return time.Time{}, badf("time %q: %v", strings.TrimSpace(s), err)
	}
	return t, nil
}

func parseAtText(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "now":
		return now, nil
	case strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+"):
		d, err := time.ParseDuration(s)
		if err != nil {
			return time.Time{}, badf("bad time %q: a relative time looks like -5s or -1m30s", s)
		}
		return now.Add(d), nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 1e11 {
			return time.Time{}, badf("bad time %q: unix time must be in milliseconds (13 digits)", s)
		}
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badf("bad time %q: want unix ms, RFC 3339 (2026-11-25T12:00:00Z) or relative like -5s", s)
	}
	return t, nil
}

// serveScreenshot answers the keyframe at or before ?at= as a JPEG, with
// the frame's time in X-Frame-Timestamp (unix ms) and X-Frame-Time.
func (w *Watch) serveScreenshot(rw http.ResponseWriter, r *http.Request) {
	cam, ok := w.camera(rw, r)
	if !ok {
		return
	}
	at, err := parseAt(r.URL.Query().Get("at"), time.Now())
	if err != nil {
		w.httpError(rw, r, err)
		return
	}
	c := w.o.Client.Camera(cam, chrysalis.CameraOptions{Format: chrysalis.RGB24, Logger: w.log})
	defer c.Close()
	img, err := c.Screenshot(r.Context(), at)
	if err != nil {
		w.httpError(rw, r, err)
		return
	}
	defer img.Release()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img.ToRGBA(), &jpeg.Options{Quality: 90}); err != nil {
		w.httpError(rw, r, err)
		return
	}
	h := rw.Header()
	h.Set("Content-Type", "image/jpeg")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	h.Set("X-Frame-Timestamp", strconv.FormatInt(img.TimestampMS(), 10))
	h.Set("X-Frame-Time", img.Time.Format(time.RFC3339Nano))
	rw.Write(b.Bytes())
}

// serveExport answers the camera's last ?last= (default 10 s) as an MP4
// attachment, remuxed from the cache from the keyframe at or before the
// window's start to the newest packet. X-Frames, X-Start-Timestamp and
// X-End-Timestamp (unix ms) describe what it holds.
func (w *Watch) serveExport(rw http.ResponseWriter, r *http.Request) {
	cam, ok := w.camera(rw, r)
	if !ok {
		return
	}
	last := 10 * time.Second
	if s := r.URL.Query().Get("last"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			// A bare number is seconds.
			n, nerr := strconv.ParseFloat(s, 64)
			// NaN and ±Inf parse as floats but name no duration (NaN
			// used to become -2562047h47m16s).
			if nerr != nil || math.IsNaN(n) || math.IsInf(n, 0) {
				w.httpError(rw, r, badf("bad last %q: want a duration like 10s or 1m", s))
				return
			}
			if n <= 0 || n > w.o.MaxExport.Seconds() {
				w.httpError(rw, r, badf("bad last %q: want more than 0 and at most %v", s, w.o.MaxExport))
				return
			}
			d = time.Duration(n * float64(time.Second))
		}
		last = d
	}
	if last <= 0 || last > w.o.MaxExport {
		w.httpError(rw, r, badf("bad last %v: want more than 0 and at most %v", last, w.o.MaxExport))
		return
	}
	// A slot or 429 at once: waiting would let parallel requests pile up
	// (each export holds a temporary file of its whole window).
	select {
	case w.exports <- struct{}{}:
		defer func() { <-w.exports }()
	default:
		rw.Header().Set("Retry-After", "5")
		http.Error(rw, fmt.Sprintf("too many exports running (at most %d at once); retry later", cap(w.exports)), http.StatusTooManyRequests)
		return
	}
	dir, err := os.MkdirTemp("", "chrysalis-export-*")
	if err != nil {
		w.httpError(rw, r, err)
		return
	}
	defer os.RemoveAll(dir)
	ex, err := w.export(r.Context(), cam, last, dir)
	if err != nil {
		w.httpError(rw, r, err)
		return
	}
	f, err := os.Open(ex.path)
	if err != nil {
		w.httpError(rw, r, err)
		return
	}
	defer f.Close()
	name := fmt.Sprintf("%s-%s-%s.mp4", cam, time.UnixMilli(ex.startMS).UTC().Format("20060102T150405Z"), strconv.FormatFloat(last.Seconds(), 'f', -1, 64)+"s")
	h := rw.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Disposition", "attachment; filename*=UTF-8''"+url.PathEscape(name))
	h.Set("X-Frames", strconv.FormatInt(ex.frames, 10))
	h.Set("X-Start-Timestamp", strconv.FormatInt(ex.startMS, 10))
	h.Set("X-End-Timestamp", strconv.FormatInt(ex.endMS, 10))
	http.ServeContent(rw, r, name, time.UnixMilli(ex.endMS), f)
}

type exported struct {
	path           string
	frames         int64
	startMS, endMS int64
}

// export remuxes the camera's last `last` into an MP4 in dir.
func (w *Watch) export(ctx context.Context, cam string, last time.Duration, dir string) (exported, error) {
	cc := w.o.Client.Cache()
	st, err := cc.Stats(ctx, cam)
	if err != nil {
		return exported{}, err
	}
	end := st.Last
	startMS := end.MS - min(uint64(last.Milliseconds()), end.MS)
	path := filepath.Join(dir, "export.mp4")
	ex, err := mp4.Export(ctx, cc, cam, cache.ID{MS: startMS}, end, path,
		sink.VideoOptions{FastStart: true, Logger: w.log}, nil)
	if err != nil {
		return exported{}, err
	}
	return exported{path: path, frames: ex.Frames, startMS: ex.FirstMS, endMS: ex.LastMS}, nil
}
