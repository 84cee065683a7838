// Package excam is the setup every example shares, so that each example's
// main.go shows only what it is about: three flags, a context that ends on
// time or Ctrl-C, and a frame cache holding the camera.
//
// The flags (registered on flag.CommandLine by Register):
//
//	-redis-url URL  read the camera from this Redis frame cache, as written by
//	                `chrysalis ingest` or the Chrysalis edge proxy
//	                (redis://[user:pass@]host:6379/0, rediss:// for TLS)
//	-camera ID      the camera id (default "demo")
//	-duration D     stop after D; Ctrl-C stops sooner
//	-input FILE     without -redis-url: play this video file (looped, in
//	                real time) as the camera instead of the bundled demo clip
//
// Without -redis-url there is no server to start: Open creates the
// in-process frame cache and runs an ingest of the bundled demo clip into
// it, looped and paced in real time, so the example reads what looks like a
// live camera: 1280x720 H.264 at 25 fps, a keyframe every 2 s, and a box
// crossing the picture between 4 s and 7 s of every 10 s loop.
package excam

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/ingest"
)

// Flags are the flags every example shares.
type Flags struct {
	// RedisURL selects a Redis frame cache; "" (default) the in-process one
	// with the demo camera.
	RedisURL string
	// Camera is the camera id. Default "demo".
	Camera string
	// Duration bounds the whole run; 0 runs until Ctrl-C.
	Duration time.Duration
	// Input is the in-process camera's video file, looped in real time;
	// "" (default) the bundled demo clip. Ignored with RedisURL.
	Input string
}

// Register registers -redis-url, -camera and -duration (default duration)
// on flag.CommandLine. Call it before flag.Parse.
func Register(duration time.Duration) *Flags {
	f := &Flags{}
	flag.StringVar(&f.RedisURL, "redis-url", "",
		"Redis frame cache `URL`, e.g. redis://localhost:6379/0 (default: an in-process cache fed with the bundled demo camera)")
	flag.StringVar(&f.Camera, "camera", "demo", "camera `id`")
	flag.DurationVar(&f.Duration, "duration", duration, "stop after this long (0: until Ctrl-C)")
	flag.StringVar(&f.Input, "input", "", "without -redis-url: a video `file` played (looped, in real time) as the camera (default: the bundled demo clip)")
	return f
}

// Context returns a context that ends after f.Duration or at Ctrl-C
// (SIGINT, SIGTERM), whichever comes first.
func (f *Flags) Context() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if f.Duration <= 0 {
		return ctx, stop
	}
	ctx, cancel := context.WithTimeout(ctx, f.Duration)
	return ctx, func() { cancel(); stop() }
}

// Open returns a client on the frame cache that holds f.Camera, and a func
// that releases everything Open started; call it once, when done.
//
// With -redis-url it connects to Redis and checks that the camera is
// there. Otherwise it creates the in-process cache (one minute of
// retention) and starts the demo camera's ingest in a goroutine, which runs
// until the release func is called; Open returns once the first frame is in
// the cache.
func (f *Flags) Open(ctx context.Context) (*chrysalis.Client, func(), error) {
	if f.RedisURL != "" {
		return f.openRedis(ctx)
	}
	return f.openDemo(ctx)
}

func (f *Flags) openRedis(ctx context.Context) (*chrysalis.Client, func(), error) {
	cl, err := chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: f.RedisURL}, chrysalis.Options{})
	if err != nil {
		return nil, nil, err
	}
	// An empty cache is fine (the camera may be starting); an unknown
	// camera is most likely a typo.
	if _, err := cl.Cache().Stats(ctx, f.Camera); errors.Is(err, chrysalis.ErrUnknownCamera) {
		cams, _ := cl.Cameras(ctx)
		cl.Close()
		return nil, nil, fmt.Errorf("camera %q is not in the cache (it has %q); pick one with -camera", f.Camera, cams)
	} else if err != nil && !errors.Is(err, chrysalis.ErrEmpty) {
		cl.Close()
		return nil, nil, err
	}
	return cl, func() { cl.Close() }, nil
}

func (f *Flags) openDemo(ctx context.Context) (*chrysalis.Client, func(), error) {
	mem := cache.NewMemory(cache.Retention{MaxAge: time.Minute})
	// The ingest runs until release: it must outlive the example's context,
	// which ends at -duration while the example is still finishing (closing
	// files, printing counters).
	cfg := ingest.Config{
		Camera: f.Camera,
		Input:  ingest.DemoInput, // looped, paced like a camera
		// The ingest's own progress lines would drown the example's output.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if f.Input != "" {
		cfg.Input, cfg.Realtime, cfg.Loop = f.Input, true, true
	}
	run, err := ingest.Start(ctx, mem, cfg)
	if err != nil {
		mem.Close()
		return nil, nil, err
	}
	release := func() {
		if err := run.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "demo camera:", err)
		}
		mem.Close()
	}
	return chrysalis.New(mem, chrysalis.Options{}), release, nil
}

// WaitForHistory waits until the cache holds at least d of the camera's
// video (Probe.Duration) and returns that probe. A Redis cache of a running
// camera usually has it already; the in-process demo camera starts empty,
// so this takes about d.
func WaitForHistory(ctx context.Context, cam *chrysalis.Camera, d time.Duration) (chrysalis.Probe, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		p, err := cam.Probe(ctx)
		if err == nil && p.Duration() >= d {
			return p, nil
		}
		if err != nil && !errors.Is(err, chrysalis.ErrEmpty) {
			return p, err
		}
		select {
		case <-ctx.Done():
			return p, fmt.Errorf("waiting for %v of video in the cache: %w", d, ctx.Err())
		case <-tick.C:
		}
	}
}
