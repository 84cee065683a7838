package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/asticode/go-astiav"

	"github.com/chryscloud/chrysalis-go/internal/avin"
)

// Defaults of the Config fields left zero.
const (
	DefaultReadTimeout  = 10 * time.Second
	DefaultBackoffMin   = 500 * time.Millisecond
	DefaultBackoffMax   = 30 * time.Second
	DefaultBuffer       = 60 * time.Second
	DefaultFlushTimeout = 5 * time.Second
)

// Config describes one camera. Camera and Input are required; every other
// field has a usable zero value (the default is named on each field).
type Config struct {
	// Camera is the camera (device) id, the <cam> of the cache keys.
	// Required; no whitespace or control characters.
	Camera string
	// Input is what FFmpeg opens: a URL (rtmp://, rtsp://, http://, srt://,
	// udp://, file:...) or a file path. Required.
	Input string
	// Format forces the input format (ffmpeg -f), e.g. "flv" or "mpegts".
	// Default "": FFmpeg probes it.
	Format string
	// Listen makes us the server the camera pushes to (FFmpeg's "listen"=1
	// option), e.g. rtmp://127.0.0.1:1935/live/cam. Input must be a URL.
	// After a pusher disconnects we listen again (a reconnect). Default
	// false: we pull (or read the file).
	Listen bool
	// StreamKey, with Listen on an rtmp:// URL, is a secret the pusher
	// must append to the stream name: it publishes to
	// rtmp://host:port/APP/STREAM?key=StreamKey (in OBS: server
	// rtmp://host:port/APP, stream key STREAM?key=StreamKey). A push to
	// another app, stream or key is refused with a log line and counted
	// (Stats.Refused), whether or not a key is set. Default "": no key.
	StreamKey string
	// Realtime paces packets by their timestamps, like ffmpeg -re: meant
	// for files, so a file behaves like a live camera. Default false: a
	// file is read as fast as the cache takes it.
	Realtime bool
	// Loop restarts the input at its end, shifting PTS/DTS so they keep
	// increasing (Stats.Loops counts the restarts). Default false: a file
	// input ends Run at its end (after flushing); a live input is
	// reconnected.
	Loop bool
	// InputOptions are passed to avformat_open_input (protocol and demuxer
	// options), e.g. {"rtsp_transport": "tcp"}. They override the options
	// this package sets itself: "listen" (Listen), "rw_timeout" and, for
	// RTSP, "timeout" (ReadTimeout), and for live inputs
	// "analyzeduration"=1000000 (a 1s stream probe). Options FFmpeg did not
	// use are logged once. Default none.
	InputOptions map[string]string
	// ReadTimeout: a blocking FFmpeg call (open, probe, read) that produces
	// nothing for this long means the input is dead; it is interrupted and
	// the input reconnected. For pulled network inputs it is also passed to
	// FFmpeg as rw_timeout (and as timeout for RTSP), in microseconds.
	// Waiting for a pusher in Listen mode is not bounded by it. Default 10s.
	ReadTimeout time.Duration
	// BackoffMin and BackoffMax bound the exponential wait before a
	// reconnect; it doubles after each failed connection and goes back to
	// BackoffMin after a connection that delivered packets. Defaults 500ms
	// and 30s.
	BackoffMin, BackoffMax time.Duration
	// Buffer is how much packet time (by both the packets' stream
	// timestamps and their capture times) may wait in memory while
	// the cache is failing or slower than the input. Beyond it whole GOPs
	// are dropped from the oldest end and counted (Stats.Dropped), so no
	// GOP reaches the cache without its keyframe - except for a file read
	// without Realtime, which waits for the cache instead. Buffered
	// packets are written in order when the cache comes back. Default 60s.
	Buffer time.Duration
	// FlushTimeout bounds how long Run keeps writing buffered packets after
	// its context is cancelled; what is left then is dropped. Default 5s.
	FlushTimeout time.Duration
	// Logger receives connection, reconnect and cache events. Default
	// slog.Default().
	Logger *slog.Logger
	// Now is the wall clock: the capture clock is anchored to it (see
	// "Capture time" in the package doc) and Stats.LastPacket is read from
	// it. Default time.Now.
	Now func() time.Time
}

// withDefaults returns the config with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffMin)
	}
	if c.Buffer == 0 {
		c.Buffer = DefaultBuffer
	}
	if c.FlushTimeout == 0 {
		c.FlushTimeout = DefaultFlushTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first problem of the config (New calls it): a
// missing camera or input, Listen without a URL, negative durations,
// BackoffMin above BackoffMax, an unknown Format.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.Camera == "" {
		return errors.New("ingest: no camera id (Config.Camera)")
	}
	if i := strings.IndexFunc(c.Camera, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		return fmt.Errorf("ingest: camera id %q contains whitespace or a control character", c.Camera)
	}
	if c.Input == "" {
		return fmt.Errorf("ingest: camera %q: no input (Config.Input: a URL or file path)", c.Camera)
	}
	scheme := avin.Scheme(c.Input)
	if c.Listen {
		if scheme == "" || scheme == "file" {
			return fmt.Errorf("ingest: camera %q: Listen needs a URL to listen on, like rtmp://0.0.0.0:1935/live/cam, not %q", c.Camera, c.Input)
		}
		if c.Loop {
			return fmt.Errorf("ingest: camera %q: Loop makes no sense with Listen (a pushed stream is live)", c.Camera)
		}
	}
	for name, d := range map[string]time.Duration{
		"ReadTimeout": c.ReadTimeout, "BackoffMin": c.BackoffMin, "BackoffMax": c.BackoffMax,
		"Buffer": c.Buffer, "FlushTimeout": c.FlushTimeout,
	} {
		if d < 0 {
			return fmt.Errorf("ingest: camera %q: negative %s %v", c.Camera, name, d)
		}
	}
	if c.BackoffMin > c.BackoffMax {
		return fmt.Errorf("ingest: camera %q: BackoffMin %v is above BackoffMax %v", c.Camera, c.BackoffMin, c.BackoffMax)
	}
	if c.Format != "" && astiav.FindInputFormat(c.Format) == nil {
		return fmt.Errorf("ingest: camera %q: unknown input format %q (see `ffmpeg -demuxers`)", c.Camera, c.Format)
	}
	for k := range c.InputOptions {
		if k == "" {
			return fmt.Errorf("ingest: camera %q: empty input option name", c.Camera)
		}
	}
	return nil
}

// isFile reports whether the input is a local file (read once, or looped),
// as opposed to a live network input that is reconnected.
func (c Config) isFile() bool {
	return !c.Listen && !avin.IsNetwork(c.Input)
}
