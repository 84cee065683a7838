// Command liveconsumer is the Chrysalis side of the live benchmarks
// (bench/README.md): a slow consumer of one or more live cameras in a Redis
// frame cache, in a process of its own so that its CPU time is the
// consumer's alone (the ingest, the RTMP pusher and Redis are other
// processes). It uses only the public API that main had before the live
// follower (commit 2e29f55), so the same file builds against that tree as
// the "before" side of BenchmarkLiveFrameAge's CPU comparison.
//
// Modes:
//   - wait: a loop of Camera.WaitLatest, then -work of sleep per image;
//   - graph: source.Live → sink.Func on the default edge, the sink sleeping
//     -work per image;
//   - tick: Camera.Latest (which does not block) once every -work, on a
//     ticker: a consumer asking at a fixed rate, so two builds that
//     answer at different speeds still convert the same number of images
//     (the CPU comparison with the build before the live follower).
//
// For each image that reaches the consumer it records the image's cache id,
// the wall-clock time, and now − image time (the capture time the ingest
// stamped). Output: one JSON line with those per camera, the count of
// images not newer than the previous one, and the process CPU time
// (getrusage, all threads) from the first image to the end.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"syscall"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/sink"
	"github.com/chryscloud/chrysalis-go/source"
)

type camResult struct {
	Camera string `json:"camera"`
	// Ages are now − image time (the ingest's capture stamp) in ms.
	Ages []float64 `json:"ages_ms"`
	// IDs are the images' cache ids and AtUS the wall-clock times (Unix
	// µs) at which they reached the consumer, for ages from the packets'
	// arrival in the cache (the benchmark knows those).
	IDs  []string `json:"ids"`
	AtUS []int64  `json:"at_us"`
	// NotNewer counts images whose cache id was not greater than the
	// previous image's (a duplicate or a step back).
	NotNewer int `json:"not_newer"`
	// Errors are the errors WaitLatest returned (the wait loop logs them
	// and goes on after 100 ms, as a service would); Err is what ended the
	// camera's consumer early.
	Errors []string `json:"errors,omitempty"`
	Err    string   `json:"error,omitempty"`
	// Decoded and Converted are the Camera's counters at the end (wait
	// and tick modes): packets decoded, images converted.
	Decoded   int64 `json:"decoded"`
	Converted int64 `json:"converted"`
}

type result struct {
	Cameras    []camResult `json:"cameras"`
	Seconds    float64     `json:"seconds"`
	CPUSeconds float64     `json:"cpu_seconds"`
}

func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	url := flag.String("redis", "redis://127.0.0.1:6379", "Redis URL")
	cams := flag.String("cameras", "cam", "comma-separated camera ids, one consumer each")
	mode := flag.String("mode", "wait", "wait (WaitLatest loop) or graph (source.Live → sink.Func)")
	dur := flag.Duration("for", 10*time.Second, "how long to consume")
	work := flag.Duration("work", 200*time.Millisecond, "per-image work (a sleep)")
	keyframes := flag.Bool("keyframes", false, "CameraOptions.KeyframesOnly")
	inline := flag.Bool("inline", false, "CameraOptions.LiveInline (decode in the follower goroutine)")
	cpuProf := flag.String("cpuprofile", "", "write a CPU profile")
	traceOut := flag.String("trace", "", "write an execution trace")
	flag.Parse()

	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	if *traceOut != "" {
		f, err := os.Create(*traceOut)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			fail(err)
		}
		defer trace.Stop()
	}

	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ctx := context.Background()
	rc, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: *url}, rediscache.Options{Logger: quiet})
	if err != nil {
		fail(err)
	}
	defer rc.Close()
	cl := chrysalis.New(rc, chrysalis.Options{Logger: quiet})
	opts := chrysalis.CameraOptions{Logger: quiet, KeyframesOnly: *keyframes}
	// By name: the benchmark builds this file against older trees too
	// (cpu_vs_before), which have no LiveInline.
	if f := reflect.ValueOf(&opts).Elem().FieldByName("LiveInline"); f.IsValid() {
		f.SetBool(*inline)
	} else if *inline {
		fmt.Fprintln(os.Stderr, "liveconsumer: -inline: this tree has no CameraOptions.LiveInline")
		os.Exit(2)
	}

	ids := strings.Split(*cams, ",")
	res := result{Cameras: make([]camResult, len(ids))}
	var wg sync.WaitGroup
	// The CPU and wall time count from the first image of any camera:
	// process start-up and the first catch-up from the keyframe are left
	// out, as pyav_live.py leaves out its imports and first decode.
	var began time.Time
	var cpu0 time.Duration
	var firstOnce sync.Once
	first := func() { firstOnce.Do(func() { began, cpu0 = time.Now(), cpu() }) }
	for i, id := range ids {
		cr := &res.Cameras[i]
		cr.Camera = id
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, *dur)
			defer cancel()
			var last cache.ID
			seen := func(img *chrysalis.ChImage) {
				first()
				now := time.Now()
				cr.Ages = append(cr.Ages, float64(now.Sub(img.Time).Microseconds())/1000)
				cr.IDs = append(cr.IDs, img.ID.String())
				cr.AtUS = append(cr.AtUS, now.UnixMicro())
				if len(cr.Ages) > 1 && last.Compare(img.ID) >= 0 {
					cr.NotNewer++
				}
				last = img.ID
			}
			var err error
			switch *mode {
			case "wait", "tick":
				err = waitLoop(ctx, cl, id, opts, *work, *mode == "tick", seen, func(err error) { cr.Errors = append(cr.Errors, err.Error()) },
					func(st chrysalis.CameraStats) { cr.Decoded, cr.Converted = st.Decoded, st.Converted })
			case "graph":
				err = graph(ctx, cl, id, opts, *work, seen, quiet)
			default:
				err = fmt.Errorf("unknown mode %q", *mode)
			}
			if err != nil && ctx.Err() == nil {
				cr.Err = err.Error()
			}
		})
	}
	wg.Wait()
	first() // no image at all: zero times
	res.Seconds, res.CPUSeconds = time.Since(began).Seconds(), (cpu() - cpu0).Seconds()
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fail(err)
	}
}

func waitLoop(ctx context.Context, cl *chrysalis.Client, id string, o chrysalis.CameraOptions, work time.Duration, tick bool,
	seen func(*chrysalis.ChImage), failed func(error), stats func(chrysalis.CameraStats)) error {
	cam := cl.Camera(id, o)
	defer cam.Close()
	defer func() { stats(cam.Stats()) }()
	var ticker *time.Ticker
	if tick {
		ticker = time.NewTicker(work)
		defer ticker.Stop()
	}
	for {
		var img *chrysalis.ChImage
		var err error
		if tick {
			img, err = cam.Latest(ctx)
		} else {
			img, err = cam.WaitLatest(ctx)
		}
		if err != nil {
			// The run's end: ctx's deadline can fail a Redis call a moment
			// before ctx.Err() reports it.
			if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
				return nil
			}
			failed(err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if img != nil {
			seen(img)
			img.Release()
		}
		if tick {
			select {
			case <-ctx.Done():
				return nil
			case <-ticker.C:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(work):
		}
	}
}

func graph(ctx context.Context, cl *chrysalis.Client, id string, o chrysalis.CameraOptions, work time.Duration, seen func(*chrysalis.ChImage), log *slog.Logger) error {
	g := flow.New(flow.Options{Logger: log})
	src := g.Source("live", source.Live(cl, id, o))
	g.Sink("slow", sink.Func(func(ctx context.Context, img flow.Image) error {
		seen(img)
		select {
		case <-ctx.Done():
		case <-time.After(work):
		}
		return nil
	}), src)
	return g.Run(ctx)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "liveconsumer:", err)
	os.Exit(1)
}
