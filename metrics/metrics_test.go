package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/promtest"
	"github.com/chryscloud/chrysalis-go/media"
	"github.com/chryscloud/chrysalis-go/metrics"
)

// A graph's counters and histograms through a registry and the text
// parser: every node's series, the operator's latency histogram, and a
// node name listed twice collected once (no gather error).
func TestFlowAndCache(t *testing.T) {
	g := flow.New(flow.Options{})
	src := g.Source("src", flow.SourceFunc(func(ctx context.Context, out chan<- flow.Image) error {
		for i := range 10 {
			img := &media.ChImage{Camera: "c", Time: time.Now(), Width: 1, Height: 1, Stride: 3, Data: make([]byte, 3)}
			img.ID.MS = uint64(i + 1)
			if err := flow.Send(ctx, out, img); err != nil {
				return err
			}
		}
		return nil
	}))
	op := g.Op("op", flow.OperatorFunc(func(ctx context.Context, in <-chan flow.Image, out chan<- flow.Image) error {
		for img := range in {
			if err := flow.Send(ctx, out, img); err != nil {
				return err
			}
		}
		return nil
	}), src, flow.Edge{Policy: flow.Block})
	g.Sink("sink", flow.SinkFunc(func(ctx context.Context, in <-chan flow.Image) error {
		for img := range in {
			img.Release()
		}
		return nil
	}), op, flow.Edge{Policy: flow.Block})
	if err := g.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	mc := cache.NewMemory(cache.Retention{})
	defer mc.Close()
	now := time.Now().UnixMilli()
	for i := range 5 {
		if _, err := mc.Append(context.Background(), "cam", &cache.Packet{Timestamp: now - 400 + int64(i)*100, Keyframe: i == 0, Data: []byte{1}}); err != nil {
			t.Fatal(err)
		}
	}
	twice := func() []flow.NodeStats { return append(g.Stats(), g.Stats()...) }
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.Flow(twice, g.Histograms), metrics.Cache(mc, []string{"cam", "nope"}))
	ts := httptest.NewServer(metrics.Mux(reg, metrics.CacheReady(mc, []string{"cam"}),
		metrics.Check{Name: "model", Fn: func(context.Context) error { return errors.New("not loaded") }}))
	defer ts.Close()
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("gather: %v", err) // a duplicate series would be an error
	}
	f := promtest.Scrape(t, ts.URL+"/metrics", "")
	for _, c := range []struct {
		name, node string
		want       float64
	}{
		{"chrysalis_flow_node_out_total", "src", 10}, {"chrysalis_flow_node_in_total", "op", 10},
		{"chrysalis_flow_node_out_total", "op", 10}, {"chrysalis_flow_node_in_total", "sink", 10},
		{"chrysalis_flow_node_dropped_total", "sink", 0}, {"chrysalis_flow_node_latency_seconds", "op", 10},
		{"chrysalis_flow_node_frame_age_seconds", "sink", 10}, {"chrysalis_flow_node_frame_age_seconds", "src", 10},
	} {
		if got := f.Must(t, c.name, "node", c.node); got != c.want {
			t.Errorf("%s{node=%q} = %v, want %v", c.name, c.node, got, c.want)
		}
	}
	if f.Find("chrysalis_flow_node_latency_seconds", "node", "sink") != nil {
		t.Error("a sink has a latency histogram")
	}
	if v := f.Must(t, "chrysalis_cache_frames", "camera", "cam"); v != 5 {
		t.Errorf("cache frames %v, want 5", v)
	}
	if v := f.Must(t, "chrysalis_cache_span_seconds", "camera", "cam"); v < 0.39 || v > 0.41 {
		t.Errorf("cache span %v, want 0.4", v)
	}
	if v := f.Must(t, "chrysalis_cache_age_seconds", "camera", "cam"); v < 0 || v > 2 {
		t.Errorf("cache age %v", v)
	}
	if v := f.Must(t, "chrysalis_cache_up", "camera", "nope"); v != 0 {
		t.Errorf("unknown camera up %v", v)
	}
	resp, err := http.Get(ts.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || strings.TrimSpace(string(b)) != "model: not loaded" {
		t.Errorf("readyz: %d %q, want 503 naming the failing check", resp.StatusCode, b)
	}
}
