package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"golang.org/x/term"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/cv"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/ingest"
	"github.com/chryscloud/chrysalis-go/internal/democlip"
	"github.com/chryscloud/chrysalis-go/metrics"
	"github.com/chryscloud/chrysalis-go/operator"
	"github.com/chryscloud/chrysalis-go/replay"
	"github.com/chryscloud/chrysalis-go/sink"
	"github.com/chryscloud/chrysalis-go/source"
	"github.com/chryscloud/chrysalis-go/watch"
)

// demoConfig is what `chrysalis demo` runs.
type demoConfig struct {
	out       string
	duration  time.Duration
	httpAddr  string
	camera    string
	input     string
	listen    bool
	fps       float64
	threshold float64
	maxClip   time.Duration
	people    bool
	redis     redisFlags
	verbose   bool
	asJSON    bool
}

func newDemoCmd() *cobra.Command {
	var dc demoConfig
	c := &cobra.Command{
		Use:   "demo [--out DIR] [--duration 30s] [--redis-url URL --input rtmp://...]",
		Short: "Run the whole chain in one process: camera, ingest, cache, graph, files and a live preview",
		Long: `demo runs, in one process and with no server to start:

  camera   the bundled demo clip looped in real time (or --input URL)
  ingest   into the in-process frame cache (or Redis with --redis-url)
  graph    live source -> throttle (--fps) -> fan-out:
             snapshots  one JPEG per second          DIR/snapshots/
             motion     motion -> window replay      DIR/clips/*.mp4 (remuxed, one per event)
             preview    the watch page               http://127.0.0.1:8080
                        (live image, probe, counters, screenshot, export, HLS;
                        /metrics, /healthz and /readyz on the same address)
             people     with --people: HOG people detector, 1 frame/s,
                        boxes drawn on the grid page (/grid)

It prints live counters (fps, frame age, drops per branch) and stops after
--duration or on Ctrl-C, leaving valid files.`,
		Example: `  chrysalis demo
  chrysalis demo --duration 1m --out /tmp/demo --http 127.0.0.1:9000
  chrysalis demo --redis-url redis://localhost:6379 --input rtmp://cam.local/live/stream --camera door`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd.Context(), cmd.OutOrStdout(), dc) },
	}
	f := c.Flags()
	f.StringVar(&dc.out, "out", "chrysalis-demo", "directory for snapshots and clips")
	f.DurationVar(&dc.duration, "duration", 30*time.Second, "stop after this long (0: until Ctrl-C)")
	f.StringVar(&dc.httpAddr, "http", "127.0.0.1:8080", "address of the live preview page")
	f.StringVar(&dc.camera, "camera", "demo", "camera id")
	f.StringVar(&dc.input, "input", "", "camera input URL or file (default: the bundled demo clip, looped in real time)")
	f.BoolVar(&dc.listen, "listen", false, "wait for the camera to push RTMP to --input")
	f.Float64Var(&dc.fps, "fps", 10, "analysis rate: the throttle ahead of the branches")
	f.Float64Var(&dc.threshold, "motion-threshold", 1.5, "motion score (mean gray difference 0..255) that triggers a clip")
	f.DurationVar(&dc.maxClip, "max-clip", time.Minute, "longest motion clip: constant motion starts a new file at the next keyframe past it (0: no limit)")
	f.BoolVar(&dc.people, "people", false, "run OpenCV's HOG people detector on one frame a second; boxes on the watch page's grid (/grid, /api/tiles); try --input testdata/people.mp4")
	f.BoolVar(&dc.verbose, "verbose", false, "debug logging")
	f.BoolVar(&dc.asJSON, "json", false, "print the final summary as JSON")
	dc.redis.register(c)
	return c
}

// demoSummary is what the demo leaves behind.
type demoSummary struct {
	Out       string           `json:"out"`
	Preview   string           `json:"preview"`
	Snapshots []string         `json:"snapshots"`
	Clips     []string         `json:"clips"`
	Ingest    ingest.Stats     `json:"ingest"`
	Nodes     []flow.NodeStats `json:"nodes"`
}

func runDemo(ctx context.Context, stdout io.Writer, dc demoConfig) error {
	if err := dc.check(); err != nil {
		return err
	}
	log, resetLog := setupLogging(dc.verbose)
	defer resetLog()
	if !dc.verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	snapDir, clipDir := filepath.Join(dc.out, "snapshots"), filepath.Join(dc.out, "clips")
	for _, d := range []string{snapDir, clipDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	ln, err := net.Listen("tcp", dc.httpAddr)
	if err != nil {
		return usagef("cannot serve the preview on --http %s: %v (pick another, e.g. --http 127.0.0.1:0)", dc.httpAddr, err)
	}
	defer ln.Close()
	fc, err := dc.openCache(ctx, log)
	if err != nil {
		return err
	}
	defer fc.Close()
	ing, err := dc.ingest(fc, log)
	if err != nil {
		return err
	}
	cl := chrysalis.New(fc, chrysalis.Options{Logger: log})
	d, err := dc.graph(cl, snapDir, clipDir, log)
	defer d.close()
	if err != nil {
		return err
	}
	defer d.preview.Close()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if dc.duration > 0 {
		runCtx, stop = context.WithTimeout(ctx, dc.duration)
		defer stop()
	}
	url := "http://" + ln.Addr().String() + "/"
	fmt.Fprintf(stdout, "chrysalis demo: camera %q from %s\n  preview   %s\n  snapshots %s\n  clips     %s\n", dc.camera,
		describeInput(dc.input), url, snapDir, clipDir)
	if dc.duration > 0 {
		fmt.Fprintf(stdout, "  stops after %s (Ctrl-C to stop now)\n", dc.duration)
	}
	if err := d.run(runCtx, stdout, cl, ln, ing, dc, log); err != nil {
		return err
	}
	return dc.summary(stdout, demoSummary{Out: dc.out, Preview: url, Clips: d.clips.Files(), Ingest: ing.Stats(), Nodes: d.g.Stats()}, snapDir, clipDir)
}

// check validates the flags.
func (dc demoConfig) check() error {
	switch {
	case dc.fps <= 0:
		return usagef("--fps must be positive")
	case dc.maxClip < 0:
		return usagef("--max-clip must not be negative")
	case dc.duration < 0:
		return usagef("--duration must not be negative")
	case dc.camera == "":
		return usagef("--camera must not be empty")
	case dc.input == "" && dc.redis.url != "":
		return usagef("with --redis-url, name the camera with --input URL (the bundled clip is for the in-process demo)")
	case dc.listen && dc.input == "":
		return usagef("--listen needs --input rtmp://0.0.0.0:PORT/live/NAME")
	}
	return nil
}

// openCache opens the frame cache: Redis with --redis-url, else in process.
func (dc demoConfig) openCache(ctx context.Context, log *slog.Logger) (cache.Cache, error) {
	ret := cache.Retention{MaxAge: time.Minute}
	if dc.redis.url != "" {
		return dc.redis.dial(ctx, rediscache.Options{Retention: ret, Logger: log})
	}
	return cache.NewMemory(ret), nil
}

// ingest makes the ingest of the camera: --input, or the bundled clip,
// a file playing as a live camera.
func (dc demoConfig) ingest(fc cache.Cache, log *slog.Logger) (*ingest.Ingest, error) {
	in := ingest.Config{Camera: dc.camera, Input: dc.input, Listen: dc.listen, Logger: log}
	if in.Input == "" {
		var err error
		if in.Input, err = democlip.WriteTo(dc.out); err != nil {
			return nil, err
		}
		in.Realtime, in.Loop = true, true
	} else if st, err := os.Stat(in.Input); err == nil && !st.IsDir() {
		in.Realtime, in.Loop = true, true // a file plays as a live camera
	}
	ing, err := ingest.New(fc, in)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return ing, nil
}

// demoGraph is the demo's graph and the sinks the summary reads.
type demoGraph struct {
	g       *flow.Graph
	preview *sink.MJPEGServer
	clips   *sink.ClipWriter
	board   *watch.DetectionBoard // --people: the newest boxes, for the page
	close   func()                // releases the detector
}

// graph declares live camera → throttle → snapshots, motion → replay →
// clips, and the preview.
func (dc demoConfig) graph(cl *chrysalis.Client, snapDir, clipDir string, log *slog.Logger) (demoGraph, error) {
	d := demoGraph{
		g:       flow.New(flow.Options{Logger: log}),
		preview: sink.NewMJPEGServer(sink.MJPEGOptions{MaxFPS: 15, Logger: log}),
		clips:   sink.Clips(clipDir, sink.ClipOptions{MaxDuration: dc.maxClip, Video: sink.VideoOptions{Logger: log}}),
		close:   func() {},
	}
	snaps := sink.ImageFiles(snapDir, sink.ImageOptions{Every: time.Second, Logger: log})
	live := source.Live(cl, dc.camera, chrysalis.CameraOptions{Logger: log})
	live.WaitForCamera = true
	motion := &operator.Motion{Threshold: dc.threshold, MinInterval: 3 * time.Second}
	cam := d.g.Source("camera", live)
	thr := d.g.Op("throttle", operator.Throttle(dc.fps), cam)
	d.g.Sink("snapshots", snaps, thr, flow.Edge{Buffer: 2, Policy: flow.DropOldest})
	mot := d.g.Op("motion", motion, thr, flow.Edge{Buffer: 2, Policy: flow.DropOldest})
	// The clips are remuxed: the replay hands on the cached packets without
	// decoding them, each clip from the keyframe at or before its window.
	// Into runs replay and clip writer as one node, so stopping cuts a
	// pending window at the newest cached frame and still writes it.
	rep := &replay.Window{Client: cl, Camera: dc.camera, Pre: 2 * time.Second, Post: 2 * time.Second,
		Packets: true, Logger: log}
	d.g.Sink("clips", rep.Into(d.clips), mot, flow.Edge{Buffer: 4, Policy: flow.Block})
	d.g.Sink("preview", d.preview.Sink(dc.camera), thr, flow.Edge{Buffer: 1, Policy: flow.DropOldest})
	if dc.people {
		// The detector's window is 128 px tall: enlarge 1.5x to find
		// people about 90 px tall, as in examples/fan-out-models.
		hog, err := cv.NewHOG(cv.HOGOptions{Upscale: 1.5, Scale: 1.1})
		if err != nil {
			return d, err
		}
		d.close = func() { hog.Close() }
		d.board = watch.NewDetectionBoard(0)
		rate := d.g.Op("people-rate", operator.Throttle(1), thr)
		det := d.g.Op("people", cv.Detect(hog), rate)
		d.g.Sink("people-boxes", d.board, det)
	}
	return d, nil
}

// run runs the ingest, the graph, the watch page and the counters until
// ctx ends (a normal end) or one of them fails.
func (d demoGraph) run(ctx context.Context, stdout io.Writer, cl *chrysalis.Client, ln net.Listener, ing *ingest.Ingest,
	dc demoConfig, log *slog.Logger) error {
	ins := []*ingest.Ingest{ing}
	wo := watch.Options{Client: cl, Cameras: []string{dc.camera}, MJPEG: d.preview, Stats: d.g.Stats,
		Histograms: d.g.Histograms, Metrics: []prometheus.Collector{metrics.Ingest(ins)},
		Ready: []metrics.Check{metrics.IngestReady(ins, ingest.DefaultReadTimeout)}, Logger: log}
	if d.board != nil {
		wo.Detections = d.board.Boxes
	}
	page, err := watch.New(wo)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: page.Handler(), ReadHeaderTimeout: 5 * time.Second}
	eg, egCtx := errgroup.WithContext(ctx)
	eg.Go(func() error { return page.Run(egCtx) })
	eg.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("preview server: %w", err)
		}
		return nil
	})
	eg.Go(func() error {
		<-egCtx.Done()
		d.preview.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	eg.Go(func() error { return ing.Run(egCtx) })
	eg.Go(func() error { return d.g.Run(egCtx) })
	eg.Go(func() error { printCounters(egCtx, stdout, d.g, ing); return nil })
	err = eg.Wait()
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = nil // --duration elapsed or Ctrl-C: a normal end
	}
	return err
}

// summary prints (or writes as JSON) what the demo made.
func (dc demoConfig) summary(stdout io.Writer, sum demoSummary, snapDir, clipDir string) error {
	sum.Snapshots, _ = filepath.Glob(filepath.Join(snapDir, "*.jpg"))
	sort.Strings(sum.Snapshots)
	if dc.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	fmt.Fprintf(stdout, "\ndone: %d packets ingested, %d snapshots in %s, %d motion clips in %s\n",
		sum.Ingest.Packets, len(sum.Snapshots), snapDir, len(sum.Clips), clipDir)
	for _, c := range sum.Clips {
		fmt.Fprintf(stdout, "  %s\n", c)
	}
	return nil
}

func describeInput(in string) string {
	if in == "" {
		return "the bundled demo clip (looped in real time)"
	}
	return redactURL(in)
}

// printCounters shows the graph's counters once a second: one refreshed
// line on a terminal, a line every 5 s otherwise.
func printCounters(ctx context.Context, w io.Writer, g *flow.Graph, ing *ingest.Ingest) {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	every := time.Second
	if !tty {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(w)
			}
			return
		case <-t.C:
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%5.0fs ingest %d pkts", time.Since(start).Seconds(), ing.Stats().Packets)
		for _, s := range g.Stats() {
			switch s.Kind {
			case "source":
				fmt.Fprintf(&b, " | %s %.1f fps age %dms", s.Name, s.FPS, s.Age.Milliseconds())
			case "sink":
				fmt.Fprintf(&b, " | %s in %d drop %d", s.Name, s.In, s.Dropped)
			default:
				if s.Name == "motion" {
					fmt.Fprintf(&b, " | %s out %d", s.Name, s.Out)
				}
			}
		}
		if tty {
			fmt.Fprintf(w, "\r\033[K%s", b.String())
		} else {
			fmt.Fprintln(w, b.String())
		}
	}
}
