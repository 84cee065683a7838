package watch_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/promtest"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/metrics"
	"github.com/chryscloud/chrysalis-go/watch"
)

// /metrics over a live camera, read with the Prometheus text parser: the
// cache series of the camera, and the node series of the live preview,
// whose counters and histograms move while someone watches; /healthz and
// /readyz answer ok, /readyz fails once the cache is closed, and with a
// token /metrics needs it.
func TestMetrics(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{MaxAge: 30 * time.Second})
	t.Cleanup(func() { mc.Close() })
	clip.Live(t, mc, "cam", 2*time.Second)
	cl := chrysalis.New(mc, chrysalis.Options{})
	_, ts := server(t, watch.Options{Client: cl, Cameras: []string{"cam"}, DisableHLS: true,
		Ready: []metrics.Check{{Name: "extra", Fn: func(context.Context) error { return nil }}}})

	f := promtest.Scrape(t, ts.URL+"/metrics", "")
	frames := f.Must(t, "chrysalis_cache_frames", "camera", "cam")
	age := f.Must(t, "chrysalis_cache_age_seconds", "camera", "cam")
	t.Logf("cache: %v frames, newest %.3f s old, span %.2f s", frames, age, f.Must(t, "chrysalis_cache_span_seconds", "camera", "cam"))
	if frames < 40 || age < 0 || age > 1 || f.Must(t, "chrysalis_cache_up", "camera", "cam") != 1 {
		t.Errorf("cache series: frames %v, age %v", frames, age)
	}
	if f.Must(t, "chrysalis_watch_mjpeg_watchers", "camera", "cam") != 0 {
		t.Error("a watcher before anyone watches")
	}

	// Watch the live stream: the preview graph runs and its nodes count.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/mjpeg/stream/cam", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	go io.Copy(io.Discard, resp.Body)
	scrapeUntil := func(what string, ok func(promtest.Families) bool) promtest.Families {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			f := promtest.Scrape(t, ts.URL+"/metrics", "")
			if ok(f) {
				return f
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	out := func(f promtest.Families) float64 {
		v, _ := f.Value("chrysalis_flow_node_out_total", "node", "live cam")
		return v
	}
	f1 := scrapeUntil("the preview's source output", func(f promtest.Families) bool { return out(f) >= 5 })
	f2 := scrapeUntil("25 more frames", func(f promtest.Families) bool { return out(f) >= out(f1)+25 })
	in1, _ := f1.Value("chrysalis_flow_node_in_total", "node", "preview cam", "kind", "sink")
	in2 := f2.Must(t, "chrysalis_flow_node_in_total", "node", "preview cam", "kind", "sink")
	ageHist := f2.Find("chrysalis_flow_node_frame_age_seconds", "node", "live cam", "kind", "source").GetHistogram()
	t.Logf("live cam out %v -> %v; preview in %v -> %v; frame age: %d samples, mean %.1f ms; fps %.1f; watchers %v",
		out(f1), out(f2), in1, in2, ageHist.GetSampleCount(), 1000*ageHist.GetSampleSum()/float64(max(ageHist.GetSampleCount(), 1)),
		f2.Must(t, "chrysalis_flow_node_fps", "node", "live cam"), f2.Must(t, "chrysalis_watch_mjpeg_watchers", "camera", "cam"))
	if in2 <= in1 || ageHist.GetSampleCount() < 30 || len(ageHist.GetBucket()) != len(flow.HistogramBounds)+1 { // and +Inf
		t.Errorf("node series did not move, or the histogram is wrong: %v", ageHist)
	}
	if f2.Must(t, "chrysalis_watch_mjpeg_watchers", "camera", "cam") != 1 {
		t.Error("watchers != 1")
	}
	cancel()

	for _, path := range []string{"/healthz", "/readyz"} {
		if r := get(t, ts.URL+path); r.code != 200 || strings.TrimSpace(string(r.body)) != "ok" {
			t.Errorf("%s: %d %q", path, r.code, r.body)
		}
	}
	mc.Close()
	r := get(t, ts.URL+"/readyz")
	t.Logf("readyz with the cache closed: %d %q", r.code, r.body)
	if r.code != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "cache: camera \"cam\"") {
		t.Errorf("readyz with the cache closed: %d %q", r.code, r.body)
	}
	if r := get(t, ts.URL+"/healthz"); r.code != 200 {
		t.Errorf("healthz with the cache closed: %d", r.code)
	}
}

// With a token, /metrics wants it; a scraper sends it as a bearer token.
func TestMetricsToken(t *testing.T) {
	cl, _ := memClip(t)
	_, ts := server(t, watch.Options{Client: cl, Cameras: []string{"cam"}, DisableHLS: true, Token: "s3cret"})
	if r := get(t, ts.URL+"/metrics"); r.code != http.StatusUnauthorized {
		t.Fatalf("/metrics without the token: %d", r.code)
	}
	f := promtest.Scrape(t, ts.URL+"/metrics", "s3cret")
	if v := f.Must(t, "chrysalis_cache_frames", "camera", "cam"); v != 100 {
		t.Errorf("chrysalis_cache_frames %v, want 100", v)
	}
}

// An extra collector that clashes with Watch's own is an error of New.
func TestMetricsDuplicateCollector(t *testing.T) {
	cl, _ := memClip(t)
	_, err := watch.New(watch.Options{Client: cl, Cameras: []string{"cam"}, DisableHLS: true,
		Metrics: []prometheus.Collector{metrics.Cache(cl.Cache(), []string{"cam"})}})
	if err == nil || !strings.Contains(err.Error(), "Options.Metrics[0]") {
		t.Fatalf("New: %v, want an Options.Metrics[0] error", err)
	}
}
