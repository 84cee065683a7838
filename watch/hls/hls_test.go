package hls_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"go.uber.org/goleak"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testx"
	"github.com/chryscloud/chrysalis-go/watch/hls"
)

// shortGOP encodes a 2 s test pattern clip (25 fps, a keyframe every 25
// frames, no B-frames) with the ffmpeg CLI and loads its packets, so
// segments of 1 s (the shortest HLS allows) come quickly. Clips are shared
// by the tests.
func shortGOP(t *testing.T, w, h int) *testclip.Clip {
	t.Helper()
	testclip.RequireFFmpeg(t)
	clips.mu.Lock()
	defer clips.mu.Unlock()
	key := [2]int{w, h}
	if c := clips.m[key]; c != nil {
		return c
	}
	path := filepath.Join(clips.dir, fmt.Sprintf("gop25-%dx%d.mp4", w, h))
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=25", w, h),
		"-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-bf", "0",
		"-pix_fmt", "yuv420p", "-y", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	// testclip loads from testdata/; reach the temp file from there.
	rel, err := filepath.Rel(filepath.Dir(testclip.Path("x")), path)
	if err != nil {
		t.Fatal(err)
	}
	c := testclip.Load(t, rel)
	clips.m[key] = c
	return c
}

var clips struct {
	mu  sync.Mutex
	dir string
	m   map[[2]int]*testclip.Clip
}

type stream struct {
	CodecName string `json:"codec_name"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
}

// ffprobeStreams runs ffprobe -show_streams on url.
func ffprobeStreams(t *testing.T, url string) []stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_streams", "-of", "json", url).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("ffprobe %s: %v: %s", url, err, stderr)
	}
	var po struct {
		Streams []stream `json:"streams"`
	}
	if err := json.Unmarshal(out, &po); err != nil {
		t.Fatalf("ffprobe: %v: %s", err, out)
	}
	return po.Streams
}

// playlist is what a media playlist says.
type playlist struct {
	sequence int
	segments []string
	discont  int
	ended    bool
}

func parsePlaylist(t *testing.T, b []byte) playlist {
	t.Helper()
	var p playlist
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"):
			p.sequence, _ = strconv.Atoi(strings.TrimPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"))
		case l == "#EXT-X-DISCONTINUITY":
			p.discont++
		case l == "#EXT-X-ENDLIST":
			p.ended = true
		case l != "" && !strings.HasPrefix(l, "#"):
			p.segments = append(p.segments, l)
		}
	}
	return p
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, b := testx.Get(t, url)
	return resp.StatusCode, b
}

// segFiles lists the segment files under dir (recursively, one level).
func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*", "seg*.ts"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The server streams a live camera lazily: ffprobe finds the H.264 720p
// video through the playlist, the playlist slides (at most ListSize
// segments, old files deleted), and the stream stops when idle.
func TestServerLive(t *testing.T) {
	t.Parallel()
	clip := shortGOP(t, 1280, 720)
	mc := cache.NewMemory(cache.Retention{MaxAge: 20 * time.Second})
	defer mc.Close()
	clip.Live(t, mc, "cam", 0)

	root := t.TempDir()
	const listSize = 2
	srv := hls.NewServer(mc, hls.ServerOptions{
		Options:     hls.Options{SegmentDuration: time.Second, ListSize: listSize},
		IdleTimeout: 1500 * time.Millisecond, Dir: root,
	})
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	url := ts.URL + "/hls/cam/index.m3u8"

	start := time.Now()
	code, body := get(t, url)
	if code != http.StatusOK || !strings.HasPrefix(string(body), "#EXTM3U") {
		t.Fatalf("first playlist request: %d %q", code, body)
	}
	t.Logf("first playlist after %v:\n%s", time.Since(start).Round(time.Millisecond), body)

	sts := ffprobeStreams(t, url)
	if len(sts) != 1 || sts[0].CodecName != "h264" || sts[0].Width != 1280 || sts[0].Height != 720 {
		t.Fatalf("ffprobe over HLS: %+v, want one h264 1280x720 stream", sts)
	}
	t.Logf("ffprobe: %+v after %v", sts[0], time.Since(start).Round(time.Millisecond))

	// Let the window slide past its size: ~3 x the list's duration.
	var p playlist
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body = get(t, url)
		if code != http.StatusOK {
			t.Fatalf("playlist: %d %s", code, body)
		}
		p = parsePlaylist(t, body)
		if p.sequence >= listSize+1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	files := segFiles(t, root)
	t.Logf("after %v: media sequence %d, playlist %v, %d segment files on disk", time.Since(start).Round(time.Millisecond), p.sequence, p.segments, len(files))
	if p.sequence < listSize+1 {
		t.Fatalf("the playlist did not slide: media sequence %d", p.sequence)
	}
	if len(p.segments) == 0 || len(p.segments) > listSize {
		t.Fatalf("playlist lists %d segments, want 1..%d", len(p.segments), listSize)
	}
	// delete_segments keeps hls_delete_threshold (1) old segment beside
	// the listed ones.
	if len(files) > listSize+1 {
		t.Fatalf("%d segment files on disk, want <= %d: %v", len(files), listSize+1, files)
	}
	for _, f := range files {
		if filepath.Base(f) == "seg00000.ts" {
			t.Fatalf("the first segment was not deleted: %v", files)
		}
	}
	code, seg := get(t, ts.URL+"/hls/cam/"+p.segments[len(p.segments)-1])
	if code != http.StatusOK || len(seg) < 188 || seg[0] != 0x47 {
		t.Fatalf("segment: %d, %d bytes", code, len(seg))
	}
	if code, _ := get(t, ts.URL+"/hls/cam/seg00000.ts"); code != http.StatusNotFound {
		t.Fatalf("deleted segment: %d, want 404", code)
	}

	// Idle: no requests for IdleTimeout stops the stream and removes its
	// directory.
	if a := srv.Active(); len(a) != 1 || a[0] != "cam" {
		t.Fatalf("active %v", a)
	}
	idleStart := time.Now()
	for len(srv.Active()) > 0 && time.Since(idleStart) < 5*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	if a := srv.Active(); len(a) > 0 {
		t.Fatalf("still streaming %v after %v idle", a, time.Since(idleStart))
	}
	for time.Since(idleStart) < 6*time.Second {
		if ents, _ := os.ReadDir(root); len(ents) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Fatalf("stream directory left behind: %v", ents)
	}
	t.Logf("idle stop after %v", time.Since(idleStart).Round(time.Millisecond))
	// A new request starts it again.
	if code, body := get(t, url); code != http.StatusOK {
		t.Fatalf("playlist after idle: %d %s", code, body)
	}
	srv.Close()
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Fatalf("Close left %v", ents)
	}
	if code, _ := get(t, url); code != http.StatusServiceUnavailable {
		t.Fatalf("after Close: %d, want 503", code)
	}
}

func TestServerBadRequests(t *testing.T) {
	t.Parallel()
	clip := shortGOP(t, 640, 360)
	mc := cache.NewMemory(cache.Retention{MaxAge: 10 * time.Second})
	defer mc.Close()
	clip.Live(t, mc, "cam", 0)
	if err := mc.SetCodec(context.Background(), "quiet", clip.CacheCodec()); err != nil {
		t.Fatal(err)
	}
	srv := hls.NewServer(mc, hls.ServerOptions{Options: hls.Options{SegmentDuration: time.Second},
		StartTimeout: 2500 * time.Millisecond, Cameras: []string{"cam", "quiet", "gone"}, Dir: t.TempDir()})
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/hls/nope/index.m3u8", 404, "unknown camera"},
		{"/hls/gone/index.m3u8", 404, "unknown camera"}, // listed, not in the cache
		{"/hls/cam/other.txt", 404, "no such file"},
		{"/hls/cam/seg00001.ts", 404, "not streaming"},
		{"/hls/quiet/index.m3u8", 503, "no segment"}, // known, but no packets arrive
		{"/hls/cam/index.m3u8", 200, "#EXTM3U"},
	} {
		code, body := get(t, ts.URL+tc.path)
		if code != tc.code || !strings.Contains(string(body), tc.want) || strings.Count(strings.TrimSpace(string(body)), "\n") > 0 && code != 200 {
			t.Errorf("GET %s: %d %q, want %d containing %q", tc.path, code, body, tc.code, tc.want)
		}
	}
}

// A codec change restarts the muxer: the playlist continues its numbering
// behind a discontinuity, and the new segments have the new size.
func TestStreamCodecChange(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	a, b := shortGOP(t, 1280, 720), shortGOP(t, 640, 360)
	t.Logf("clips encoded in %v", time.Since(t0).Round(time.Millisecond))
	mc := cache.NewMemory(cache.Retention{MaxAge: 10 * time.Second})
	defer mc.Close()
	cam := a.Live(t, mc, "cam", 0)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- hls.Stream(ctx, mc, "cam", dir, hls.Options{SegmentDuration: time.Second, ListSize: 10})
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-errc; err != context.Canceled {
				t.Errorf("Stream returned %v, want context.Canceled", err)
			}
		}
	}
	defer stop()
	read := func() playlist {
		b, err := os.ReadFile(filepath.Join(dir, hls.PlaylistName))
		if err != nil {
			return playlist{}
		}
		return parsePlaylist(t, b)
	}
	waitFor := func(what string, ok func(playlist) bool) playlist {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if p := read(); ok(p) {
				return p
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("timed out waiting for %s; playlist %+v", what, read())
		return playlist{}
	}
	before := waitFor("two segments", func(p playlist) bool { return len(p.segments) >= 2 })
	cam.Switch(b)
	after := waitFor("two segments after the change", func(p playlist) bool { return p.discont > 0 && len(p.segments) >= len(before.segments)+3 })
	t.Logf("%v: before %v; after %v (%d discontinuities)", time.Since(t0).Round(time.Millisecond), before.segments, after.segments, after.discont)
	if after.sequence != before.sequence || after.segments[0] != before.segments[0] || after.discont != 1 {
		t.Fatalf("the playlist restarted instead of continuing: %+v -> %+v", before, after)
	}
	first := ffprobeStreams(t, filepath.Join(dir, after.segments[0]))
	last := ffprobeStreams(t, filepath.Join(dir, after.segments[len(after.segments)-1]))
	if first[0].Width != 1280 || last[0].Width != 640 || last[0].Height != 360 {
		t.Fatalf("segment sizes %+v ... %+v, want 1280 then 640x360", first, last)
	}
	if after.ended {
		t.Fatal("the live playlist has an EXT-X-ENDLIST")
	}
	stop()
	if p := read(); !p.ended || len(p.segments) < len(after.segments) {
		t.Fatalf("after the stream ended: %+v, want the list ended", p)
	}
}

func TestMain(m *testing.M) {
	astiav.SetLogLevel(astiav.LogLevelError) // the hls muxer logs every file it opens
	dir, err := os.MkdirTemp("", "hls-test-clips-")
	if err != nil {
		panic(err)
	}
	clips.dir, clips.m = dir, map[[2]int]*testclip.Clip{}
	code := m.Run()
	os.RemoveAll(dir)
	// The tests run in parallel: check for leaks once they all finished.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
