package watch_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testx"
	"github.com/chryscloud/chrysalis-go/watch"
)

// server runs a Watch over cl behind an httptest server on loopback until
// test cleanup, and checks that Run returns after cancellation.
func server(t *testing.T, o watch.Options) (*watch.Watch, *httptest.Server) {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	w, err := watch.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	ts := httptest.NewServer(w.Handler())
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != context.Canceled {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10 s of cancellation")
		}
		ts.Close()
	})
	return w, ts
}

// testLogger logs warnings and errors into the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

type response struct {
	code int
	body []byte
	h    http.Header
}

func get(t *testing.T, url string) response {
	t.Helper()
	resp, b := testx.Get(t, url)
	return response{resp.StatusCode, b, resp.Header}
}

// probeMP4 writes b to a file and runs ffprobe -count_frames on it.
func probeMP4(t *testing.T, b []byte) testclip.Info {
	t.Helper()
	path := filepath.Join(t.TempDir(), "export.mp4")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return testclip.Probe(t, path)
}

// memClip is a memory cache holding clip720 as camera "cam", packets 40 ms
// apart from t0.
func memClip(t *testing.T) (*chrysalis.Client, *testclip.Clip) {
	t.Helper()
	mc := cache.NewMemory(cache.Retention{})
	t.Cleanup(func() { mc.Close() })
	clip := testclip.Load(t, "clip720.mp4")
	clip.Append(t, mc, "cam", t0, 40)
	return chrysalis.New(mc, chrysalis.Options{}), clip
}

const t0 = int64(1_760_000_000_000)
