// Package metrics exposes Chrysalis counters in the Prometheus text format
// and serves health checks. Collectors read the counters the components
// already keep (ingest.Stats, cache.Stats, flow.Graph Stats and
// Histograms) at scrape time, so nothing is added to the hot path but the
// graph's lock-free histograms.
//
//	reg := metrics.NewRegistry()
//	reg.MustRegister(metrics.Ingest(ins), metrics.Cache(c, cameras), metrics.Flow(g.Stats, g.Histograms))
//	mux := metrics.Mux(reg, metrics.CacheReady(c, cameras))
//	http.ListenAndServe("127.0.0.1:9090", mux) // /metrics, /healthz, /readyz
//
// Metric names (labels in braces):
//
//	chrysalis_ingest_packets_total{camera}        video packets read and accepted
//	chrysalis_ingest_written_total{camera}        packets appended to the cache
//	chrysalis_ingest_dropped_total{camera}        packets dropped (cache too slow or down)
//	chrysalis_ingest_skipped_total{camera}        packets before a connection's first keyframe
//	chrysalis_ingest_reconnects_total{camera}     reopenings of a live input
//	chrysalis_ingest_loops_total{camera}          restarts of a looped file
//	chrysalis_ingest_cache_errors_total{camera}   failed cache writes
//	chrysalis_ingest_refused_total{camera}        RTMP clients turned away
//	chrysalis_ingest_buffered_packets{camera}     packets waiting for the cache
//	chrysalis_ingest_connected{camera}            1 while the input is open
//	chrysalis_ingest_last_packet_age_seconds{camera}
//	chrysalis_cache_up{camera}                    1 when the cache answered with packets
//	chrysalis_cache_frames{camera}                packets cached (the stream length)
//	chrysalis_cache_keyframes{camera}             keyframe index length
//	chrysalis_cache_span_seconds{camera}          newest minus oldest packet time
//	chrysalis_cache_age_seconds{camera}           now minus the newest packet time
//	chrysalis_flow_node_in_total{node,kind}       images into the node's input edge
//	chrysalis_flow_node_out_total{node,kind}      images the node emitted
//	chrysalis_flow_node_dropped_total{node,kind}  images its edge policy dropped
//	chrysalis_flow_node_fps{node,kind}            recent output rate
//	chrysalis_flow_node_frame_age_seconds{node,kind}  histogram: now - frame time at output
//	chrysalis_flow_node_latency_seconds{node,kind}    histogram: input edge to output (operators)
//
// plus the Go runtime's go_* and process_* series.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/ingest"
)

// NewRegistry returns a registry holding the Go runtime and process
// collectors. Register the Chrysalis collectors on it.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves reg in the Prometheus text format. A collector that fails
// (the cache is down) leaves its series out; the rest are served.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// ScrapeTimeout bounds the cache reads of one scrape (and one readiness
// check).
const ScrapeTimeout = 3 * time.Second

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// ---- ingest

var (
	ingPackets    = desc("chrysalis_ingest_packets_total", "Video packets read and accepted.", "camera")
	ingWritten    = desc("chrysalis_ingest_written_total", "Packets appended to the cache.", "camera")
	ingDropped    = desc("chrysalis_ingest_dropped_total", "Packets dropped because the cache was too slow or down.", "camera")
	ingSkipped    = desc("chrysalis_ingest_skipped_total", "Packets read before a connection's first keyframe.", "camera")
	ingReconnects = desc("chrysalis_ingest_reconnects_total", "Reopenings of a live input after it failed, ended or went silent.", "camera")
	ingLoops      = desc("chrysalis_ingest_loops_total", "Restarts of a looped input.", "camera")
	ingCacheErrs  = desc("chrysalis_ingest_cache_errors_total", "Failed cache writes (each retry counts).", "camera")
	ingRefused    = desc("chrysalis_ingest_refused_total", "Clients the RTMP listener turned away.", "camera")
	ingBuffered   = desc("chrysalis_ingest_buffered_packets", "Packets waiting for the cache.", "camera")
	ingConnected  = desc("chrysalis_ingest_connected", "1 while the camera's input is open.", "camera")
	ingLastAge    = desc("chrysalis_ingest_last_packet_age_seconds", "Seconds since the newest packet was read.", "camera")
)

type ingestCollector struct{ ins []*ingest.Ingest }

// Ingest collects the counters of each ingest (ingest.Stats), labelled by
// camera.
func Ingest(ins []*ingest.Ingest) prometheus.Collector { return ingestCollector{ins} }

func (ingestCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{ingPackets, ingWritten, ingDropped, ingSkipped, ingReconnects, ingLoops,
		ingCacheErrs, ingRefused, ingBuffered, ingConnected, ingLastAge} {
		ch <- d
	}
}

func (c ingestCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for _, in := range c.ins {
		cam := in.Camera()
		s := in.Stats()
		counter := func(d *prometheus.Desc, v int64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), cam)
		}
		counter(ingPackets, s.Packets)
		counter(ingWritten, s.Written)
		counter(ingDropped, s.Dropped)
		counter(ingSkipped, s.Skipped)
		counter(ingReconnects, s.Reconnects)
		counter(ingLoops, s.Loops)
		counter(ingCacheErrs, s.CacheErrors)
		counter(ingRefused, s.Refused)
		ch <- prometheus.MustNewConstMetric(ingBuffered, prometheus.GaugeValue, float64(s.Buffered), cam)
		ch <- prometheus.MustNewConstMetric(ingConnected, prometheus.GaugeValue, b2f(s.Connected), cam)
		if !s.LastPacket.IsZero() {
			ch <- prometheus.MustNewConstMetric(ingLastAge, prometheus.GaugeValue, now.Sub(s.LastPacket).Seconds(), cam)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// ---- cache

var (
	cacheUp        = desc("chrysalis_cache_up", "1 when the cache answered for the camera with packets, else 0.", "camera")
	cacheFrames    = desc("chrysalis_cache_frames", "Packets cached for the camera (the stream length).", "camera")
	cacheKeyframes = desc("chrysalis_cache_keyframes", "Keyframe index length.", "camera")
	cacheSpan      = desc("chrysalis_cache_span_seconds", "Newest minus oldest cached packet time.", "camera")
	cacheAge       = desc("chrysalis_cache_age_seconds", "Now minus the newest cached packet time.", "camera")
)

type cacheCollector struct {
	c       cache.Cache
	cameras []string
}

// Cache collects, per camera, the cache's length, span and the age of its
// newest packet (cache.Stats, one call per camera and scrape).
func Cache(c cache.Cache, cameras []string) prometheus.Collector {
	return cacheCollector{c, append([]string(nil), cameras...)}
}

func (cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cacheUp, cacheFrames, cacheKeyframes, cacheSpan, cacheAge} {
		ch <- d
	}
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	for _, cam := range c.cameras {
		st, err := c.c.Stats(ctx, cam)
		switch {
		case errors.Is(err, cache.ErrUnknownCamera) || errors.Is(err, cache.ErrEmpty):
			ch <- prometheus.MustNewConstMetric(cacheUp, prometheus.GaugeValue, 0, cam)
			ch <- prometheus.MustNewConstMetric(cacheFrames, prometheus.GaugeValue, 0, cam)
			continue
		case err != nil:
			ch <- prometheus.MustNewConstMetric(cacheUp, prometheus.GaugeValue, 0, cam)
			ch <- prometheus.NewInvalidMetric(cacheFrames, fmt.Errorf("camera %q: %w", cam, err))
			continue
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, cam)
		}
		gauge(cacheUp, 1)
		gauge(cacheFrames, float64(st.Frames))
		gauge(cacheKeyframes, float64(st.Keyframes))
		gauge(cacheSpan, float64(st.Last.MS-min(st.First.MS, st.Last.MS))/1000)
		gauge(cacheAge, time.Since(time.UnixMilli(int64(st.Last.MS))).Seconds())
	}
}

// ---- flow

var (
	nodeIn      = desc("chrysalis_flow_node_in_total", "Images accepted into the node's input edge.", "node", "kind")
	nodeOut     = desc("chrysalis_flow_node_out_total", "Images the node emitted.", "node", "kind")
	nodeDropped = desc("chrysalis_flow_node_dropped_total", "Images the node's input edge policy dropped.", "node", "kind")
	nodeFPS     = desc("chrysalis_flow_node_fps", "Recent output rate, images per second.", "node", "kind")
	nodeAge     = desc("chrysalis_flow_node_frame_age_seconds", "Frame age (now - image time) at the node's output (a sink's input).", "node", "kind")
	nodeLatency = desc("chrysalis_flow_node_latency_seconds", "Operators: time from an image's arrival in the input edge to the node emitting it.", "node", "kind")
)

// bounds are flow.HistogramBounds in seconds.
var bounds = func() []float64 {
	b := make([]float64, len(flow.HistogramBounds))
	for i, d := range flow.HistogramBounds {
		b[i] = d.Seconds()
	}
	return b
}()

type flowCollector struct {
	stats func() []flow.NodeStats
	hists func() []flow.NodeHistograms
}

// Flow collects the nodes' counters (stats, e.g. a flow.Graph's Stats) and
// histograms (hists, e.g. its Histograms; nil: none). A node name seen
// twice (two graphs with the same node names) is collected once.
func Flow(stats func() []flow.NodeStats, hists func() []flow.NodeHistograms) prometheus.Collector {
	return flowCollector{stats, hists}
}

func (flowCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{nodeIn, nodeOut, nodeDropped, nodeFPS, nodeAge, nodeLatency} {
		ch <- d
	}
}

func (c flowCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	if c.stats != nil {
		for _, s := range c.stats() {
			if seen[s.Name] {
				continue
			}
			seen[s.Name] = true
			counter := func(d *prometheus.Desc, v int64) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), s.Name, s.Kind)
			}
			if s.Kind != "source" {
				counter(nodeIn, s.In)
				counter(nodeDropped, s.Dropped)
			}
			if s.Kind != "sink" {
				counter(nodeOut, s.Out)
				ch <- prometheus.MustNewConstMetric(nodeFPS, prometheus.GaugeValue, s.FPS, s.Name, s.Kind)
			}
		}
	}
	if c.hists == nil {
		return
	}
	seen = map[string]bool{}
	for _, h := range c.hists() {
		if seen[h.Name] {
			continue
		}
		seen[h.Name] = true
		ch <- constHistogram(nodeAge, h.Age, h.Name, h.Kind)
		if h.Kind == "operator" {
			ch <- constHistogram(nodeLatency, h.Latency, h.Name, h.Kind)
		}
	}
}

func constHistogram(d *prometheus.Desc, h flow.Histogram, labels ...string) prometheus.Metric {
	b := make(map[float64]uint64, len(bounds))
	for i, ub := range bounds {
		b[ub] = h.Buckets[i]
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum.Seconds(), b, labels...)
}

// ---- health

// Check is a named readiness check: nil when ready.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Mux serves reg on /metrics, liveness on /healthz (always 200 "ok" while
// the process serves) and readiness on /readyz: 200 "ok" when every check
// passes within ScrapeTimeout, else 503 with one line per failing check.
func Mux(reg *prometheus.Registry, checks ...Check) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler(reg))
	mux.HandleFunc("GET /healthz", Healthz)
	mux.Handle("GET /readyz", Readyz(checks...))
	return mux
}

// Healthz answers 200 "ok": the process is up and serving.
func Healthz(rw http.ResponseWriter, _ *http.Request) {
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-store")
	rw.Write([]byte("ok\n"))
}

// Readyz answers 200 "ok" when every check passes, else 503 listing the
// failures, one per line ("name: error").
func Readyz(checks ...Check) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), ScrapeTimeout)
		defer cancel()
		var bad []string
		for _, c := range checks {
			if err := c.Fn(ctx); err != nil {
				bad = append(bad, c.Name+": "+strings.ReplaceAll(err.Error(), "\n", " "))
			}
		}
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Header().Set("Cache-Control", "no-store")
		if len(bad) > 0 {
			rw.WriteHeader(http.StatusServiceUnavailable)
			rw.Write([]byte(strings.Join(bad, "\n") + "\n"))
			return
		}
		rw.Write([]byte("ok\n"))
	})
}

// CacheReady passes when the cache answers for every camera (a camera not
// written yet, or empty, passes: the cache is reachable).
func CacheReady(c cache.Cache, cameras []string) Check {
	cams := append([]string(nil), cameras...)
	return Check{Name: "cache", Fn: func(ctx context.Context) error {
		for _, cam := range cams {
			_, err := c.Stats(ctx, cam)
			if err != nil && !errors.Is(err, cache.ErrUnknownCamera) && !errors.Is(err, cache.ErrEmpty) {
				return fmt.Errorf("camera %q: %w", cam, err)
			}
		}
		return nil
	}}
}

// IngestReady passes when every ingest has read a packet within
// maxSilence: each camera's input is live.
func IngestReady(ins []*ingest.Ingest, maxSilence time.Duration) Check {
	return Check{Name: "ingest", Fn: func(ctx context.Context) error {
		var bad []string
		now := time.Now()
		for _, in := range ins {
			s := in.Stats()
			switch {
			case s.LastPacket.IsZero():
				bad = append(bad, fmt.Sprintf("camera %q: no packet yet", in.Camera()))
			case now.Sub(s.LastPacket) > maxSilence:
				bad = append(bad, fmt.Sprintf("camera %q: no packet for %v", in.Camera(), now.Sub(s.LastPacket).Round(time.Second)))
			}
		}
		if len(bad) > 0 {
			return errors.New(strings.Join(bad, "; "))
		}
		return nil
	}}
}
