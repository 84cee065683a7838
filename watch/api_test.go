package watch_test

import (
	"bytes"
	"encoding/json"
	"image/jpeg"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/watch"
)

func TestNewValidates(t *testing.T) {
	cl, _ := memClip(t)
	for _, o := range []watch.Options{
		{Cameras: []string{"cam"}},
		{Client: cl},
		{Client: cl, Cameras: []string{"cam", "cam"}},
		{Client: cl, Cameras: []string{""}},
	} {
		if _, err := watch.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// The API over a fixed clip: probe, screenshots, exports (checked with
// ffprobe) and one-line 4xx errors.
func TestAPI(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after the other cleanups
	cl, _ := memClip(t)
	_, ts := server(t, watch.Options{Client: cl, Cameras: []string{"cam", "absent"}})

	r := get(t, ts.URL+"/")
	if r.code != 200 || !bytes.Contains(r.body, []byte("Chrysalis watch")) {
		t.Fatalf("GET /: %d", r.code)
	}
	for _, f := range []string{"hls.min.js", "watch.js", "watch.css", "hls.js.LICENSE"} {
		if r := get(t, ts.URL+"/static/"+f); r.code != 200 || len(r.body) == 0 {
			t.Errorf("static %s: %d", f, r.code)
		}
	}
	var cams struct {
		Cameras []string
		HLS     bool
	}
	if err := json.Unmarshal(get(t, ts.URL+"/api/cameras").body, &cams); err != nil || len(cams.Cameras) != 2 || !cams.HLS {
		t.Fatalf("cameras %+v %v", cams, err)
	}
	var p chrysalis.Probe
	if err := json.Unmarshal(get(t, ts.URL+"/api/probe/cam").body, &p); err != nil || p.Frames != 100 || p.Width != 1280 || p.Codec != "h264" {
		t.Fatalf("probe %+v %v", p, err)
	}

	// Screenshot at packet 70's time: the keyframe at packet 50.
	r = get(t, ts.URL+"/api/screenshot/cam?at="+strconv.FormatInt(t0+70*40, 10))
	if r.code != 200 || r.h.Get("Content-Type") != "image/jpeg" || r.h.Get("X-Frame-Timestamp") != strconv.FormatInt(t0+50*40, 10) {
		t.Fatalf("screenshot: %d %s %q", r.code, r.h, r.body[:min(len(r.body), 100)])
	}
	if im, err := jpeg.Decode(bytes.NewReader(r.body)); err != nil || im.Bounds().Dx() != 1280 || im.Bounds().Dy() != 720 {
		t.Fatalf("screenshot JPEG: %v", err)
	}

	// Exports: the window's start rounds down to the keyframe before it.
	for _, tc := range []struct {
		last     string
		frames   int
		startMS  int64
		duration float64
	}{
		{"1s", 50, t0 + 2000, 2.0},   // starts at t0+2960: keyframe 50
		{"2500ms", 100, t0, 4.0},     // starts at t0+1460: keyframe 0
		{"60", 100, t0, 4.0},         // bare seconds; the whole cache
		{"0.5s", 50, t0 + 2000, 2.0}, // a fraction
	} {
		r := get(t, ts.URL+"/api/export/cam?last="+tc.last)
		if r.code != 200 || r.h.Get("Content-Type") != "video/mp4" || !strings.HasPrefix(r.h.Get("Content-Disposition"), "attachment") {
			t.Fatalf("export %s: %d %s %q", tc.last, r.code, r.h, r.body[:min(len(r.body), 100)])
		}
		info := probeMP4(t, r.body)
		t.Logf("export last=%s: %+v, headers frames=%s start=%s, %q", tc.last, info, r.h.Get("X-Frames"), r.h.Get("X-Start-Timestamp"), r.h.Get("Content-Disposition"))
		if info.Codec != "h264" || info.Width != 1280 || info.Frames != tc.frames || r.h.Get("X-Frames") != strconv.Itoa(tc.frames) ||
			r.h.Get("X-Start-Timestamp") != strconv.FormatInt(tc.startMS, 10) || info.Duration < tc.duration-0.05 || info.Duration > tc.duration+0.05 {
			t.Fatalf("export last=%s: %+v, want %d frames, %.2f s from %d", tc.last, info, tc.frames, tc.duration, tc.startMS)
		}
	}

	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/api/probe/nope", 404, "unknown camera"},
		{"/api/probe/absent", 404, "unknown camera"}, // listed, not in the cache
		{"/api/screenshot/nope?at=-5s", 404, "unknown camera"},
		{"/api/screenshot/cam?at=noon", 400, "bad time"},
		{"/api/screenshot/cam?at=1760000000", 400, "milliseconds"},
		{"/api/screenshot/cam?at=" + strconv.FormatInt(t0-1000, 10), 404, "no keyframe"},
		{"/api/screenshot/absent", 404, "unknown camera"},
		// Times a cache id cannot name are bad requests, not wrapped ids
		// (1960 used to answer the newest keyframe).
		{"/api/screenshot/cam?at=1960-01-01T00:00:00Z", 400, `time "1960-01-01T00:00:00Z": bad time: must be between 1970-01-01`},
		{"/api/screenshot/cam?at=0001-01-01T00:00:00Z", 400, "bad time: must be between"},
		{"/api/screenshot/cam?at=-600000h", 400, "bad time: must be between"},
		{"/api/screenshot/cam?at=253402300800000", 400, "bad time: must be between"},
		{"/api/screenshot/cam?at=10000-01-01T00:00:00Z", 400, "bad time"},
		{"/api/export/cam?last=ten", 400, "bad last"},
		{"/api/export/cam?last=-5s", 400, "bad last"},
		{"/api/export/cam?last=2h", 400, "at most"},
		{"/api/export/nope?last=5s", 404, "unknown camera"},
		{"/api/export/absent?last=5s", 404, "unknown camera"},
		{"/hls/nope/index.m3u8", 404, "unknown camera"},
		{"/static/nope.js", 404, ""},
	} {
		r := get(t, ts.URL+tc.path)
		body := strings.TrimSpace(string(r.body))
		if r.code != tc.code || !strings.Contains(body, tc.want) || strings.Contains(body, "\n") {
			t.Errorf("GET %s: %d %q, want %d and one line containing %q", tc.path, r.code, body, tc.code, tc.want)
		}
	}
}

func TestHLSDisabled(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after the other cleanups
	cl, _ := memClip(t)
	_, ts := server(t, watch.Options{Client: cl, Cameras: []string{"cam"}, DisableHLS: true})
	if r := get(t, ts.URL+"/hls/cam/index.m3u8"); r.code != 404 || !strings.Contains(string(r.body), "disabled") {
		t.Fatalf("HLS disabled: %d %s", r.code, r.body)
	}
	if r := get(t, ts.URL+"/api/cameras"); !bytes.Contains(r.body, []byte(`"hls": false`)) {
		t.Fatalf("cameras: %s", r.body)
	}
}

// Watch's own preview decodes only while someone watches the camera.
func TestPreviewOnDemand(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after the other cleanups
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{MaxAge: 10 * time.Second})
	t.Cleanup(func() { mc.Close() })
	clip.Live(t, mc, "cam", time.Second)
	_, ts := server(t, watch.Options{Client: chrysalis.New(mc, chrysalis.Options{}), Cameras: []string{"cam"}})
	stats := func() watch.Stats {
		var st watch.Stats
		if err := json.Unmarshal(get(t, ts.URL+"/api/stats").body, &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	out := func() int64 {
		for _, n := range stats().Nodes {
			if n.Name == "live cam" {
				return n.Out
			}
		}
		return -1
	}
	time.Sleep(500 * time.Millisecond)
	if n := out(); n > 0 {
		t.Fatalf("the preview decoded %d frames with nobody watching", n)
	}
	resp, err := http.Get(ts.URL + "/mjpeg/stream/cam")
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 64)
	_, err = io.ReadFull(resp.Body, part)
	if err != nil || !strings.Contains(string(part), "image/jpeg") {
		t.Fatalf("stream: %v %q", err, part)
	}
	// Wait for the preview to decode (a condition: a busy machine may take
	// longer than any fixed pause).
	deadline := time.Now().Add(30 * time.Second)
	for out() <= 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	watching := out()
	if st := stats(); watching <= 0 || st.MJPEG["cam"].Watchers != 1 {
		t.Fatalf("while watched: live out %d, %+v", watching, st.MJPEG)
	}
	resp.Body.Close()
	left := time.Now()
	var last int64 = -1
	for time.Since(left) < 10*time.Second {
		time.Sleep(500 * time.Millisecond)
		n := out()
		if n == last {
			break
		}
		last = n
	}
	t.Logf("%d frames while watched; decoding stopped %v after the viewer left, at %d frames", watching, time.Since(left).Round(100*time.Millisecond), last)
	if time.Since(left) >= 10*time.Second {
		t.Fatal("the preview kept decoding after the viewer left")
	}
}
