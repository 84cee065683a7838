package watch

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/metrics"
)

var (
	mjpegWatchers = prometheus.NewDesc("chrysalis_watch_mjpeg_watchers", "Clients watching the camera's live MJPEG stream.", []string{"camera"}, nil)
	mjpegEncoded  = prometheus.NewDesc("chrysalis_watch_mjpeg_encoded_total", "JPEG encodes of the camera's live preview.", []string{"camera"}, nil)
)

// mjpegCollector collects the live preview streams' counters.
type mjpegCollector struct{ w *Watch }

func (mjpegCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- mjpegWatchers
	ch <- mjpegEncoded
}

func (c mjpegCollector) Collect(ch chan<- prometheus.Metric) {
	for _, cam := range c.w.o.Cameras {
		st := c.w.mjpeg.Stats(cam)
		ch <- prometheus.MustNewConstMetric(mjpegWatchers, prometheus.GaugeValue, float64(st.Watchers), cam)
		ch <- prometheus.MustNewConstMetric(mjpegEncoded, prometheus.CounterValue, float64(st.Encoded), cam)
	}
}

// initMetrics builds the registry /metrics serves: the cache per camera,
// the nodes (Options.Stats and Histograms, or the own preview graphs'),
// the preview streams, and Options.Metrics.
func (w *Watch) initMetrics() error {
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.Cache(w.o.Client.Cache(), w.o.Cameras), metrics.Flow(w.nodeStats, w.nodeHists),
		mjpegCollector{w})
	for i, c := range w.o.Metrics {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("watch: Options.Metrics[%d]: %w", i, err)
		}
	}
	w.metrics = reg
	return nil
}

// nodeHists is the node histograms /metrics shows.
func (w *Watch) nodeHists() []flow.NodeHistograms {
	if w.o.Stats != nil {
		if w.o.Histograms != nil {
			return w.o.Histograms()
		}
		return nil
	}
	var out []flow.NodeHistograms
	for i := range w.graphs {
		if g := w.graphs[i].Load(); g != nil {
			out = append(out, g.Histograms()...)
		}
	}
	return out
}

// metricsRoutes adds /metrics, /healthz and /readyz (behind the same host
// and token guard as the page: a scraper sends the token as a bearer
// token).
func (w *Watch) metricsRoutes(mux *http.ServeMux) {
	mux.Handle("GET /metrics", metrics.Handler(w.metrics))
	mux.HandleFunc("GET /healthz", metrics.Healthz)
	checks := append([]metrics.Check{metrics.CacheReady(w.o.Client.Cache(), w.o.Cameras)}, w.o.Ready...)
	mux.Handle("GET /readyz", metrics.Readyz(checks...))
}
