// Package watch is a web UI over a frame cache: for each camera, the live
// picture (MJPEG), its probe (span, fps, size, codec), a screenshot at a
// chosen time, an MP4 export of the last seconds (remuxed, no re-encode), an
// HLS player, and the dataflow nodes' counters.
//
//	w, err := watch.New(watch.Options{Client: cl, Cameras: []string{"cam1"}})
//	...
//	go w.Run(ctx) // the live previews and the HLS streams
//	http.ListenAndServe("127.0.0.1:8080", w.Handler())
//
// The page and its scripts are embedded (hls.js is vendored under static/),
// so it needs no network beyond the server. Endpoints (all GET, relative to
// where Handler is mounted):
//
//	/                               the page (with several cameras: the grid,
//	                                see grid.go; ?camera=ID: one camera)
//	/grid                           the grid of every camera
//	/api/tiles, /api/tile/<camera>  the grid's tiles (see grid.go)
//	/metrics                        Prometheus metrics (package metrics)
//	/healthz, /readyz               liveness; readiness (the cache answers)
//	/api/cameras                    {"cameras": [...], "hls": true}
//	/api/probe/<camera>             chrysalis.Probe as JSON
//	/api/stats                      {"nodes": [flow.NodeStats...], "mjpeg": {...}, "hls": [...]}
//	/api/screenshot/<camera>?at=T   image/jpeg of the keyframe at or before T
//	                                (unix ms, RFC 3339, or relative: -5s; default now)
//	/api/export/<camera>?last=10s   video/mp4 attachment: the last 10 s, from
//	                                the keyframe at or before their start
//	/mjpeg/stream/<camera>          the live MJPEG stream (sink.MJPEGServer)
//	/hls/<camera>/index.m3u8        the HLS playlist (package watch/hls)
//
// Bad requests (unknown camera, bad time) get a 4xx status and a one-line
// text error. A request for a Host that is not loopback or listed in
// Options.AllowedHosts gets 421 (DNS rebinding); with Options.Token set, a
// request without the token gets 401; an export beyond
// Options.MaxConcurrentExports gets 429.
package watch

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/metrics"
	"github.com/chryscloud/chrysalis-go/record"
	"github.com/chryscloud/chrysalis-go/sink"
	"github.com/chryscloud/chrysalis-go/source"
	"github.com/chryscloud/chrysalis-go/watch/hls"
)

//go:embed static
var staticFS embed.FS

// Defaults of Options.
const (
	DefaultPreviewFPS = 10
	DefaultMaxExport  = 10 * time.Minute
	// DefaultMaxConcurrentExports is Options.MaxConcurrentExports' default.
	DefaultMaxConcurrentExports = 2
	// RestartDelay is the pause before a failed live preview is rebuilt.
	RestartDelay = 2 * time.Second
)

// Options configures a Watch. Client and Cameras are required.
type Options struct {
	// Client reads the frame cache. Required; Watch does not close it.
	Client *chrysalis.Client
	// Cameras are the camera ids shown, in this order. Required. Requests
	// for other cameras are 404.
	Cameras []string
	// MJPEG, when set, is the live preview server to show: the caller
	// publishes each camera on it (MJPEGServer.Sink(camera)) from its own
	// graph, and owns it (Watch does not close it). When nil (default),
	// Watch runs its own: while someone watches a camera, Run follows it
	// with source.Live into a sink.MJPEGServer at PreviewFPS.
	MJPEG *sink.MJPEGServer
	// PreviewFPS caps the JPEG encodes per second of Watch's own preview.
	// Default 10.
	PreviewFPS float64
	// PreviewWidth resizes Watch's own preview (0, the default: the
	// camera's size). The height keeps the aspect.
	PreviewWidth int
	// Stats returns node counters to display (e.g. a flow.Graph's Stats).
	// When nil, the page shows the counters of Watch's own preview graphs.
	Stats func() []flow.NodeStats
	// Histograms returns node histograms for /metrics (e.g. a flow.Graph's
	// Histograms), to go with Stats. When nil and Stats is nil, those of
	// Watch's own preview graphs.
	Histograms func() []flow.NodeHistograms
	// Metrics are extra collectors /metrics serves (e.g. metrics.Ingest of
	// the process's ingests), besides the cache, node and preview series.
	Metrics []prometheus.Collector
	// Ready are extra readiness checks for /readyz, besides the cache
	// answering for every camera.
	Ready []metrics.Check
	// Detections, when set, returns the boxes to draw over a camera's tile
	// on the grid page (its newest detections); nil or empty draws none.
	Detections func(camera string) []Detection
	// DisableHLS turns the HLS player and /hls/ off. HLS is on by default.
	DisableHLS bool
	// HLS configures the HLS server (segments of 2 s, 5 in the playlist,
	// a camera's stream stopped 30 s after its last request). Its Cameras
	// and Logger are set by Watch.
	HLS hls.ServerOptions
	// MaxExport is the longest export window (?last=). Default 10 min.
	MaxExport time.Duration
	// MaxConcurrentExports bounds the exports running at once; a request
	// beyond it is answered 429 Too Many Requests at once, so parallel
	// requests cannot pile up memory and temporary disk. Default 2.
	MaxConcurrentExports int
	// AllowedHosts are the host names or addresses (no port) the Host
	// header of a request may carry, besides loopback (localhost,
	// 127.0.0.0/8, ::1), which is always allowed. Any other Host is
	// answered 421 Misdirected Request: a web page on another site that
	// rebinds its DNS name to this server's address still sends its own
	// name, so it cannot read the cameras through a browser on this
	// machine. Serving beyond loopback, list the address and names clients
	// use. "*" allows any host (behind a proxy that checks it). Default:
	// loopback only.
	AllowedHosts []string
	// Token, when set, is a bearer token every request must present:
	// "Authorization: Bearer <token>", or ?token=<token> once (the
	// response sets an HttpOnly, SameSite=Strict cookie the page's own
	// requests then carry). Others get 401. Default "": no authentication,
	// fit only for loopback.
	Token string
	// Archive is a record archive (record.Options.Dir) whose recording
	// state and last RecordSegments segments the page shows per camera,
	// with the storage switch (RecordSwitch; default the Redis one when
	// the cache is Redis). See record.go for the endpoints.
	Archive        string
	RecordSwitch   record.Switch
	RecordSegments int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Watch is the web UI. Handler serves it; Run runs what it needs behind
// (live previews, HLS streams) and must be running while it is served.
type Watch struct {
	o        Options
	log      *slog.Logger
	mjpeg    *sink.MJPEGServer
	ownMJPEG bool
	sinks    []flow.Sink // own preview sinks, by camera index
	graphs   []atomic.Pointer[flow.Graph]
	hls      *hls.Server
	handler  http.Handler
	exports  chan struct{} // a slot per running export
	ran      atomic.Bool
	metrics  *prometheus.Registry
	tiles    *tiles
}

// New checks o and returns a Watch. Nothing runs until Run.
func New(o Options) (*Watch, error) {
	if o.Client == nil {
		return nil, errors.New("watch: Options.Client is required")
	}
	if len(o.Cameras) == 0 {
		return nil, errors.New("watch: no cameras")
	}
	o.Cameras = slices.Clone(o.Cameras)
	for i, c := range o.Cameras {
		if c == "" {
			return nil, errors.New("watch: empty camera id")
		}
		if slices.Index(o.Cameras, c) != i {
			return nil, fmt.Errorf("watch: camera %q listed twice", c)
		}
	}
	if o.PreviewFPS <= 0 {
		o.PreviewFPS = DefaultPreviewFPS
	}
	if o.PreviewWidth < 0 {
		o.PreviewWidth = 0
	}
	if o.MaxExport <= 0 {
		o.MaxExport = DefaultMaxExport
	}
	if o.MaxConcurrentExports <= 0 {
		o.MaxConcurrentExports = DefaultMaxConcurrentExports
	}
	o.AllowedHosts = slices.Clone(o.AllowedHosts)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	w := &Watch{o: o, log: o.Logger, mjpeg: o.MJPEG, graphs: make([]atomic.Pointer[flow.Graph], len(o.Cameras)),
		exports: make(chan struct{}, o.MaxConcurrentExports)}
	if w.mjpeg == nil {
		w.ownMJPEG = true
		w.mjpeg = sink.NewMJPEGServer(sink.MJPEGOptions{MaxFPS: o.PreviewFPS, Logger: o.Logger})
		for _, c := range o.Cameras {
			w.sinks = append(w.sinks, w.mjpeg.Sink(c)) // published (listed) from now on
		}
	}
	if !o.DisableHLS {
		ho := o.HLS
		ho.Cameras = o.Cameras
		ho.Logger = o.Logger
		w.hls = hls.NewServer(o.Client.Cache(), ho)
	}
	if err := w.initMetrics(); err != nil {
		return nil, err
	}
	w.tiles = newTiles()
	w.handler = w.routes()
	return w, nil
}

// Handler returns the HTTP handler of the page and its API. Mount it at
// the root, or under a prefix with http.StripPrefix: the page's links are
// relative.
func (w *Watch) Handler() http.Handler { return w.handler }

// Run runs the live previews (when Watch owns the MJPEG server; each one
// decodes only while someone watches it) until ctx ends, then stops the
// HLS streams and ends the MJPEG streams it serves.
// A preview that fails is logged and rebuilt after RestartDelay, so one
// camera's trouble never stops the page. Run returns ctx.Err() once every
// goroutine it started, and every HLS stream, has exited. Run once.
func (w *Watch) Run(ctx context.Context) error {
	if !w.ran.CompareAndSwap(false, true) {
		return errors.New("watch: Run called twice")
	}
	var eg errgroup.Group
	if w.ownMJPEG {
		for i, cam := range w.o.Cameras {
			eg.Go(func() error { w.preview(ctx, i, cam); return nil })
		}
	}
	eg.Go(func() error {
		<-ctx.Done()
		if w.hls != nil {
			w.hls.Close()
		}
		if w.ownMJPEG {
			w.mjpeg.Close() // ends the streaming responses
		}
		return nil
	})
	_ = eg.Wait()
	w.tiles.close()
	return ctx.Err()
}

// previewLinger is how long Watch's own preview of a camera keeps decoding
// after its last viewer left, and previewPoll how often it looks.
const (
	previewLinger = 5 * time.Second
	previewPoll   = 250 * time.Millisecond
)

// preview follows camera i into the MJPEG server until ctx ends. It decodes
// only while someone watches the camera's stream (and previewLinger after),
// so an open server with nobody looking costs no decoding. A graph that
// fails is rebuilt after RestartDelay.
func (w *Watch) preview(ctx context.Context, i int, cam string) {
	tick := time.NewTicker(previewPoll)
	defer tick.Stop()
	watched := func() bool { return w.mjpeg.Stats(cam).Watchers > 0 }
	for {
		for !watched() {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		g := flow.New(flow.Options{Logger: w.log})
		src := &source.LiveSource{Client: w.o.Client, Camera: cam, WaitForCamera: true, Logger: w.log,
			Options: chrysalis.CameraOptions{Width: w.o.PreviewWidth, Logger: w.log}}
		n := g.Source("live "+cam, src)
		g.Sink("preview "+cam, w.sinks[i], n)
		w.graphs[i].Store(g)
		gctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- g.Run(gctx) }()
		var err error
		var idleSince time.Time
	running:
		for {
			select {
			case err = <-errc:
				break running
			case <-tick.C:
				switch {
				case watched():
					idleSince = time.Time{}
				case idleSince.IsZero():
					idleSince = time.Now()
				case time.Since(idleSince) > previewLinger:
					cancel() // nobody watches: stop decoding
				}
			}
		}
		stopped := gctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return
		}
		if stopped {
			continue
		}
		w.log.Warn("watch: live preview failed; restarting", "camera", cam, "err", err, "in", RestartDelay)
		t := time.NewTimer(RestartDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// nodeStats is what /api/stats shows as nodes.
func (w *Watch) nodeStats() []flow.NodeStats {
	if w.o.Stats != nil {
		return w.o.Stats()
	}
	out := []flow.NodeStats{}
	for i := range w.graphs {
		if g := w.graphs[i].Load(); g != nil {
			out = append(out, g.Stats()...)
		}
	}
	return out
}

func (w *Watch) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.HandleFunc("GET /{$}", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Cache-Control", "no-store")
		page := "index.html" // one camera, or ?camera=ID: the single-camera view
		if len(w.o.Cameras) > 1 && r.URL.Query().Get("camera") == "" {
			page = "grid.html"
		}
		http.ServeFileFS(rw, r, static, page)
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.Handle("GET /mjpeg/", http.StripPrefix("/mjpeg", w.mjpeg.Handler()))
	mux.HandleFunc("GET /api/cameras", w.serveCameras)
	mux.HandleFunc("GET /api/stats", w.serveStats)
	mux.HandleFunc("GET /api/probe/{camera}", w.serveProbe)
	mux.HandleFunc("GET /api/screenshot/{camera}", w.serveScreenshot)
	mux.HandleFunc("GET /api/export/{camera}", w.serveExport)
	w.metricsRoutes(mux)
	w.gridRoutes(mux)
	w.recordRoutes(mux)
	if w.hls != nil {
		mux.Handle("GET /hls/", w.hls)
	} else {
		mux.HandleFunc("GET /hls/", func(rw http.ResponseWriter, r *http.Request) {
			http.Error(rw, "HLS is disabled", http.StatusNotFound)
		})
	}
	return w.guard(mux)
}

func writeJSON(rw http.ResponseWriter, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(rw)
	enc.SetIndent("", " ")
	enc.Encode(v)
}

func (w *Watch) serveCameras(rw http.ResponseWriter, r *http.Request) {
	writeJSON(rw, struct {
		Cameras []string `json:"cameras"`
		HLS     bool     `json:"hls"`
	}{w.o.Cameras, w.hls != nil})
}

// Stats is the /api/stats document.
type Stats struct {
	// Nodes are the dataflow nodes' counters (Options.Stats, or Watch's
	// own preview graphs).
	Nodes []flow.NodeStats `json:"nodes"`
	// MJPEG are the live preview streams' counters, by camera.
	MJPEG map[string]sink.MJPEGStats `json:"mjpeg"`
	// HLS lists the cameras whose HLS stream is running.
	HLS []string `json:"hls"`
}

func (w *Watch) serveStats(rw http.ResponseWriter, r *http.Request) {
	st := Stats{Nodes: w.nodeStats(), MJPEG: map[string]sink.MJPEGStats{}, HLS: []string{}}
	for _, c := range w.o.Cameras {
		st.MJPEG[c] = w.mjpeg.Stats(c)
	}
	if w.hls != nil {
		if a := w.hls.Active(); a != nil {
			st.HLS = a
		}
	}
	writeJSON(rw, st)
}

// camera returns the request's camera, or answers 404.
func (w *Watch) camera(rw http.ResponseWriter, r *http.Request) (string, bool) {
	cam := r.PathValue("camera")
	if !slices.Contains(w.o.Cameras, cam) {
		http.Error(rw, fmt.Sprintf("unknown camera %q", cam), http.StatusNotFound)
		return "", false
	}
	return cam, true
}

func (w *Watch) serveProbe(rw http.ResponseWriter, r *http.Request) {
	cam, ok := w.camera(rw, r)
	if !ok {
		return
	}
	c := w.o.Client.Camera(cam, chrysalis.CameraOptions{Logger: w.log})
	defer c.Close()
	p, err := c.Probe(r.Context())
	if err != nil {
		w.httpError(rw, r, err)
		return
	}
	writeJSON(rw, p)
}
