package main

import (
	"context"
	"fmt"
	"image/jpeg"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/redact"
)

// setupLogging returns the CLI's logger (stderr, text), makes it slog's
// default until reset, and routes go-redis's
// and FFmpeg's own logs through it: go-redis's pool retries at debug level
// and FFmpeg errors only (warnings with -v), so a failure stays one line.
func setupLogging(verbose bool) (*slog.Logger, func()) {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	redis.SetLogger(redisLogger{log})
	ffLevel := astiav.LogLevelError
	if !verbose {
		ffLevel = astiav.LogLevelFatal
	}
	astiav.SetLogLevel(ffLevel)
	astiav.SetLogCallback(func(_ astiav.Classer, l astiav.LogLevel, _, msg string) {
		if l > ffLevel {
			return
		}
		log.Debug("ffmpeg", "msg", redact.Text(strings.TrimSpace(msg))) // FFmpeg names its input URL
	})
	// Library code that logs to slog.Default() (sinks, a camera without a
	// logger) writes in the same format.
	prev := slog.Default()
	slog.SetDefault(log)
	return log, func() {
		astiav.ResetLogCallback()
		slog.SetDefault(prev)
	}
}

// redisLogger routes go-redis's internal log to slog at debug level.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+redact.Text(strings.TrimSpace(fmt.Sprintf(format, v...))))
}

// redactURL hides a password and secret query values in a URL for
// messages (redact.URL).
func redactURL(s string) string { return redact.URL(s) }

// checkRedisURL checks the three forms rediscache.ParseURL reads: one
// server, a cluster (?addr=) and sentinels (redis+sentinel://).
func checkRedisURL(s string) error {
	if _, err := rediscache.ParseURL(s); err != nil {
		return usagef("bad --redis-url: %s", strings.TrimPrefix(err.Error(), rediscache.ErrBadURL.Error()+" "))
	}
	return nil
}

// parseTime reads TIME: RFC 3339, unix milliseconds, or a duration relative
// to now ("-5s", "-2m30s"; "now" is now). A time a cache id cannot name
// (zero, before 1970, after year 9999) is a usage error naming the flag.
func parseTime(flag, s string, now time.Time) (time.Time, error) {
	t, err := parseTimeText(flag, s, now)
	if err != nil {
		return time.Time{}, err
	}
	if err := cache.CheckTime(t); err != nil {
		return time.Time{}, usagef("bad --%s %q: %v", flag, strings.TrimSpace(s), err)
	}
	return t, nil
}

func parseTimeText(flag, s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return time.Time{}, usagef("--%s is empty: want RFC 3339, unix ms or a relative time like -5s", flag)
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+"):
		d, err := time.ParseDuration(s)
		if err != nil {
			return time.Time{}, usagef("bad --%s %q: a relative time looks like -5s or -1m30s", flag, s)
		}
		return now.Add(d), nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 1e11 {
			return time.Time{}, usagef("bad --%s %q: unix time must be in milliseconds (13 digits)", flag, s)
		}
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, usagef("bad --%s %q: want RFC 3339 (2026-11-25T12:00:00Z), unix ms or a relative time like -5s", flag, s)
	}
	return t, nil
}

// imageFormat checks that path ends in .jpg, .jpeg or .png.
func imageFormat(path string) (string, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jpg", ".jpeg":
		return "jpeg", nil
	case ".png":
		return "png", nil
	}
	return "", usagef("-o %q: the image file must end in .jpg, .jpeg or .png", path)
}

// writeImage writes img as JPEG or PNG (by path's extension), atomically.
func writeImage(path string, img *chrysalis.ChImage) error {
	format, err := imageFormat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".chrysalis-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	rgba := img.ToRGBA()
	if format == "png" {
		err = png.Encode(tmp, rgba)
	} else {
		err = jpeg.Encode(tmp, rgba, &jpeg.Options{Quality: 92})
	}
	if cerr := tmp.Chmod(0o644); err == nil {
		err = cerr
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

// layoutFlags choose the Redis key layout (rediscache.Layout): --layout
// edge|cloud (default: detected per camera) and the cloud layout's
// --stream-key.
type layoutFlags struct {
	layout    string
	streamKey string
}

func (f *layoutFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.layout, "layout", os.Getenv("CHRYSALIS_LAYOUT"),
		"Redis key layout: edge (the edge proxy's) or cloud (the Chrysalis Cloud node's, as the Python SDK read); default: detected per camera (env CHRYSALIS_LAYOUT)")
	c.Flags().StringVar(&f.streamKey, "stream-key", "",
		`cloud layout: the video stream key; "{camera}" in it is replaced by --camera, so cameras can share a Redis (default "input_rtmp_stream": one camera per Redis, any --camera reads it)`)
}

// connOptions builds the connection options from the Redis flags.
func (f *redisFlags) connOptions() (rediscache.ConnOptions, error) {
	l, err := rediscache.ParseLayout(f.layout)
	if err != nil {
		return rediscache.ConnOptions{}, usagef("bad --layout %q: want edge or cloud (or leave it out to detect)", f.layout)
	}
	return rediscache.ConnOptions{URL: f.url, TLSCAFile: f.tlsCA, Layout: l, StreamKey: f.streamKey}, nil
}
