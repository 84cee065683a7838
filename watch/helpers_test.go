package watch_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/watch"
)

// liveCamera feeds clip into mc as camera cam at 25 fps, stamped with the
// wall clock, looping. It first backfills `history` worth of packets
// stamped in the past, as if the camera had been running that long. It
// returns once the camera is in the cache; the feed stops at test cleanup.
func liveCamera(t *testing.T, mc *cache.Memory, cam string, clip *testclip.Clip, history time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := mc.SetCodec(ctx, cam, clip.CacheCodec()); err != nil {
		t.Fatal(err)
	}
	const step = 40 * time.Millisecond
	start := time.Now().Add(-history).Truncate(step)
	appendPkt := func(i int) error {
		p := clip.Packets[i%len(clip.Packets)]
		var extra []byte
		if p.Key {
			extra = clip.Extradata
		}
		_, err := mc.Append(ctx, cam, &cache.Packet{Timestamp: start.Add(time.Duration(i) * step).UnixMilli(), Keyframe: p.Key,
			Data: p.Data, PTS: p.PTS, DTS: p.DTS, TimeBase: clip.TimeBase, CodecName: clip.Codec, Width: clip.Width,
			Height: clip.Height, PixFmt: clip.PixFmt, Extradata: extra, Number: int64(i + 1)})
		return err
	}
	i := 0
	for ; start.Add(time.Duration(i) * step).Before(time.Now()); i++ {
		if err := appendPkt(i); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ; ; i++ {
			due := start.Add(time.Duration(i) * step)
			tm := time.NewTimer(time.Until(due))
			select {
			case <-ctx.Done():
				tm.Stop()
				return
			case <-tm.C:
			}
			if appendPkt(i) != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

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
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, b, resp.Header}
}

type mp4Info struct {
	Codec         string
	Width, Height int
	Frames        int
	Duration      float64
}

// probeMP4 writes b to a file and runs ffprobe -count_frames on it.
func probeMP4(t *testing.T, b []byte) mp4Info {
	t.Helper()
	path := filepath.Join(t.TempDir(), "export.mp4")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames:format=duration", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var po struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
			Frames    string `json:"nb_read_frames"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &po); err != nil || len(po.Streams) != 1 {
		t.Fatalf("ffprobe: %v: %s", err, out)
	}
	s := po.Streams[0]
	n, _ := strconv.Atoi(s.Frames)
	d, _ := strconv.ParseFloat(po.Format.Duration, 64)
	return mp4Info{Codec: s.CodecName, Width: s.Width, Height: s.Height, Frames: n, Duration: d}
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
