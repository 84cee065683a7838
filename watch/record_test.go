package watch_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/chryscloud/chrysalis-go/record"
	"github.com/chryscloud/chrysalis-go/watch"
)

type recordDoc struct {
	Enabled bool                `json:"enabled"`
	Cameras []watch.RecordState `json:"cameras"`
}

func post(t *testing.T, url, ctype, body string) int {
	t.Helper()
	resp, err := http.Post(url, ctype, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The recording panel: the page's switch sets the store field a running
// recorder follows; the panel shows it writing, then the finished segment
// as a link that serves the file.
func TestRecordPanel(t *testing.T) {
	clip := testclip.Load(t, "clip720.mp4")
	srv := testredis.Start(t, testredis.Options{})
	ctx := context.Background()
	rc, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: srv.URL()}, rediscache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	live := clip.Live(t, rc, "cam", 3*time.Second)
	defer live.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	if err := rdb.HSet(ctx, rediscache.AccessKey("cam"), "store", "0").Err(); err != nil {
		t.Fatal(err)
	}
	cl := chrysalis.New(rc, chrysalis.Options{})
	defer cl.Close()
	dir := t.TempDir()
	rec, err := record.New(cl, []string{"cam"}, record.Options{Dir: dir, Segment: time.Hour, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	_, ts := server(t, watch.Options{Client: cl, Cameras: []string{"cam"}, Archive: dir, DisableHLS: true})

	state := func() watch.RecordState {
		t.Helper()
		r := get(t, ts.URL+"/api/record")
		var d recordDoc
		if err := json.Unmarshal(r.body, &d); err != nil || r.code != 200 || !d.Enabled || len(d.Cameras) != 1 {
			t.Fatalf("/api/record: %d %s %v", r.code, r.body, err)
		}
		return d.Cameras[0]
	}
	wait := func(what string, cond func(watch.RecordState) bool) watch.RecordState {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			s := state()
			if cond(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5 s: %+v", what, s)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if s := state(); s.Switch != "off" || s.Writing || len(s.Segments) != 0 {
		t.Fatalf("before: %+v", s)
	}
	if code := post(t, ts.URL+"/api/record/cam", "application/json", `{"on": true}`); code != 200 {
		t.Fatalf("switch on: %d", code)
	}
	if v := rdb.HGet(ctx, rediscache.AccessKey("cam"), "store").Val(); v != "1" {
		t.Fatalf("store = %q after switching on", v)
	}
	wait("writing", func(s watch.RecordState) bool { return s.Switch == "on" && s.Writing })
	if code := post(t, ts.URL+"/api/record/cam", "application/json", `{"on": false}`); code != 200 {
		t.Fatalf("switch off: %d", code)
	}
	s := wait("a segment", func(s watch.RecordState) bool { return s.Switch == "off" && !s.Writing && len(s.Segments) == 1 })
	seg := s.Segments[0]
	r := get(t, ts.URL+"/"+seg.URL)
	want, err := os.ReadFile(filepath.Join(dir, "cam", seg.File))
	if err != nil || r.code != 200 || r.h.Get("Content-Type") != "video/mp4" || string(r.body) != string(want) {
		t.Fatalf("GET %s: %d %s, %d bytes; file %d bytes %v", seg.URL, r.code, r.h.Get("Content-Type"), len(r.body), len(want), err)
	}
	if info := probeMP4(t, r.body); int64(info.Frames) != seg.Frames || seg.Frames == 0 {
		t.Errorf("segment plays %d frames, listed %d", info.Frames, seg.Frames)
	}

	for _, tc := range []struct {
		name, url, ctype, body string
		code                   int
	}{
		{"form post", "/api/record/cam", "application/x-www-form-urlencoded", "on=true", 415},
		{"bad body", "/api/record/cam", "application/json", `{"off": 1}`, 400},
		{"unknown camera", "/api/record/nope", "application/json", `{"on": true}`, 404},
	} {
		if code := post(t, ts.URL+tc.url, tc.ctype, tc.body); code != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.code)
		}
	}
	idx := strings.TrimSuffix(seg.File, ".mp4") + ".idx"
	for _, p := range []string{"/api/record/cam/segments/" + idx, "/api/record/cam/segments/..%2F..%2Fetc%2Fpasswd",
		"/api/record/nope/segments/" + seg.File} {
		if r := get(t, ts.URL+p); r.code != 404 {
			t.Errorf("GET %s: %d, want 404", p, r.code)
		}
	}
	if r := get(t, ts.URL+"/static/record.js"); r.code != 200 || !strings.Contains(string(get(t, ts.URL+"/").body), "static/record.js") {
		t.Errorf("record.js: %d, or not in the page", r.code)
	}
}
