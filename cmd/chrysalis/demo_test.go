package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/internal/promtest"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
)

// The demo, as `make demo` runs it, ends by itself and leaves at least 10
// JPEGs and a playable MP4; its preview answers during the run.
func TestDemoEndToEnd(t *testing.T) {
	testclip.RequireFFmpeg(t)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ingestTestBinary(t), "demo", "--duration", "13s", "--out", out, "--http", "127.0.0.1:0")
	stdout, stderr := startPiped(t, cmd)
	urlRe := regexp.MustCompile(`preview\s+(http://\S+)`)
	var log strings.Builder
	previewOK := make(chan string, 1)
	sawURL := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		log.WriteString(line + "\n")
		if m := urlRe.FindStringSubmatch(line); m != nil && !sawURL {
			sawURL = true
			go func(base string) { previewOK <- checkPreview(base) }(m[1])
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, log.String(), stderr.String())
	}
	t.Logf("demo output:\n%s", log.String())
	if !sawURL {
		t.Fatal("the demo never printed its preview URL")
	}
	// The check ends within its own deadline; on a busy machine it may
	// still be polling when the demo exits, so wait for its answer.
	select {
	case msg := <-previewOK:
		if msg != "" {
			t.Fatalf("preview: %s", msg)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the preview check did not answer within 60 s")
	}
	jpgs, _ := filepath.Glob(filepath.Join(out, "snapshots", "*.jpg"))
	if len(jpgs) < 10 {
		t.Fatalf("%d snapshots, want >= 10", len(jpgs))
	}
	clips, _ := filepath.Glob(filepath.Join(out, "clips", "*.mp4"))
	if len(clips) < 1 {
		t.Fatalf("no motion clip in %s", out)
	}
	for _, c := range clips {
		probe, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
			"-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", c).Output()
		if err != nil {
			t.Fatalf("ffprobe %s: %v", c, err)
		}
		f := strings.Split(strings.TrimSpace(string(probe)), ",")
		n, _ := strconv.Atoi(f[len(f)-1])
		if f[0] != "h264" || n < 25 {
			t.Fatalf("clip %s: ffprobe says %q, want an h264 clip of >= 25 frames", c, probe)
		}
		t.Logf("clip %s: %d frames", filepath.Base(c), n)
	}
}

// checkPreview polls the preview until it serves the page and a JPEG
// snapshot of the camera; it returns "" on success.
func checkPreview(base string) string {
	// Bounded by the demo's life (13 s) too: its server goes with it.
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond) // poll interval
		page, err := http.Get(base)
		if err != nil {
			last = err.Error()
			continue
		}
		io.Copy(io.Discard, page.Body)
		page.Body.Close()
		snap, err := http.Get(strings.TrimSuffix(base, "/") + "/mjpeg/snapshot/demo.jpg")
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(snap.Body)
		snap.Body.Close()
		if page.StatusCode == 200 && snap.StatusCode == 200 && len(body) > 2 && body[0] == 0xFF && body[1] == 0xD8 {
			return checkDemoMetrics(strings.TrimSuffix(base, "/"))
		}
		last = "page " + page.Status + ", snapshot " + snap.Status
	}
	return "no answer in 20 s: " + last
}

// The demo for 60 s: every clip is one motion event. The demo camera's box
// crosses the picture between 4 s and 7 s of every 10 s loop, so each
// event makes one clip of less than a loop; ffprobe finds no presentation
// time step over two frame intervals in any clip (no second event spliced
// in after a jump), and every clip starts on a keyframe.
func TestDemoOneClipPerEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for 60 s")
	}
	t.Parallel()
	testclip.RequireFFmpeg(t)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ingestTestBinary(t), "demo", "--duration", "60s", "--out", out, "--http", "127.0.0.1:0")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if strings.Contains(stderr.String(), "gap in packet numbers") {
		t.Errorf("the demo logged a packet gap:\n%s", stderr.String())
	}
	clips, _ := filepath.Glob(filepath.Join(out, "clips", "*.mp4"))
	// Events start at about 4, 14, ..., 54 s; the last may be cut short.
	if len(clips) < 5 {
		t.Fatalf("%d clips in 60 s, want >= 5 (one per 10 s loop):\n%s", len(clips), stdout.String())
	}
	const frame = 1.0 / 25
	for _, c := range clips {
		pts, key := clipPackets(t, c)
		slices.Sort(pts)
		maxStep := 0.0
		for i := 1; i < len(pts); i++ {
			maxStep = max(maxStep, pts[i]-pts[i-1])
		}
		span := pts[len(pts)-1] - pts[0]
		t.Logf("%s: %d frames over %.2f s, first is a keyframe: %v, largest pts step %.3f s",
			filepath.Base(c), len(pts), span, key, maxStep)
		if !key {
			t.Errorf("%s does not start with a keyframe", c)
		}
		if maxStep > 2*frame+0.001 {
			t.Errorf("%s has a pts jump of %.3f s (more than two frame intervals): two events in one clip", c, maxStep)
		}
		if span >= 10 {
			t.Errorf("%s spans %.2f s: more than one event of the 10 s loop", c, span)
		}
	}
}

// clipPackets returns a video file's packets' presentation times (decode
// order) and whether the first packet is a keyframe.
func clipPackets(t *testing.T, path string) (pts []float64, key bool) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	for i, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		p, err := strconv.ParseFloat(f[0], 64)
		if err != nil || len(f) < 2 {
			t.Fatalf("ffprobe %s: %q", path, line)
		}
		if i == 0 {
			key = strings.HasPrefix(f[1], "K")
		}
		pts = append(pts, p)
	}
	return pts, key
}

// checkDemoMetrics reads the demo's /metrics with the Prometheus text
// parser until the ingest and graph counters have moved by a second's
// worth of frames, and checks /readyz; it returns "" on success.
func checkDemoMetrics(base string) string {
	deadline := time.Now().Add(10 * time.Second)
	type sample struct{ packets, throttled, age float64 }
	read := func() (sample, string) {
		f, err := promtest.Get(base+"/metrics", "")
		if err != nil {
			return sample{}, err.Error()
		}
		var s sample
		var ok [3]bool
		s.packets, ok[0] = f.Value("chrysalis_ingest_packets_total", "camera", "demo")
		s.throttled, ok[1] = f.Value("chrysalis_flow_node_out_total", "node", "throttle", "kind", "operator")
		s.age, ok[2] = f.Value("chrysalis_flow_node_frame_age_seconds", "node", "snapshots", "kind", "sink")
		if _, lat := f.Value("chrysalis_flow_node_latency_seconds", "node", "motion"); !ok[0] || !ok[1] || !ok[2] || !lat {
			return s, fmt.Sprintf("series missing: %v, motion latency %v", ok, lat)
		}
		return s, ""
	}
	first, msg := read()
	for ; time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var s sample
		if s, msg = read(); msg != "" {
			continue
		}
		if s.packets >= first.packets+25 && s.throttled >= first.throttled+5 && s.age > first.age {
			resp, err := http.Get(base + "/readyz")
			if err != nil {
				return err.Error()
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return "/readyz: " + resp.Status
			}
			return ""
		}
		msg = fmt.Sprintf("counters did not move enough: %+v -> %+v", first, s)
	}
	return "metrics: " + msg
}

// `demo --people` on footage with people: the HOG branch's boxes reach the
// watch page's tiles (/api/tiles), labelled person, inside the frame.
func TestDemoPeople(t *testing.T) {
	testclip.RequireFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ingestTestBinary(t), "demo", "--duration", "60s", "--out", t.TempDir(),
		"--http", "127.0.0.1:0", "--people", "--input", testclip.Path("people.mp4"))
	stdout, stderr := startPiped(t, cmd)
	defer cmd.Wait()
	defer cmd.Process.Kill()
	urlRe := regexp.MustCompile(`preview\s+(http://\S+)`)
	sc := bufio.NewScanner(stdout)
	base := ""
	for base == "" && sc.Scan() {
		if m := urlRe.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatalf("no preview URL; stderr:\n%s", stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	var last string
	for ctx.Err() == nil {
		var got struct {
			Tiles []struct {
				Camera     string `json:"camera"`
				Detections []struct {
					X, Y, W, H float64
					Label      string
				} `json:"detections"`
			} `json:"tiles"`
		}
		res, err := http.Get(strings.TrimSuffix(base, "/") + "/api/tiles")
		if err == nil {
			err = json.NewDecoder(res.Body).Decode(&got)
			res.Body.Close()
		}
		if err != nil {
			last = err.Error()
		} else if len(got.Tiles) == 1 && len(got.Tiles[0].Detections) >= 2 {
			for _, d := range got.Tiles[0].Detections {
				if d.Label != "person" || d.W <= 0.02 || d.H <= 0.05 || d.X < 0 || d.Y < 0 || d.X+d.W > 1 || d.Y+d.H > 1 {
					t.Fatalf("box %+v: want a person inside the frame", d)
				}
			}
			t.Logf("tile boxes: %+v", got.Tiles[0].Detections)
			return
		} else {
			last = fmt.Sprintf("%+v", got)
		}
		time.Sleep(250 * time.Millisecond) // the page polls once a second; so does this
	}
	t.Fatalf("no person boxes on the tile; last answer: %s\nstderr:\n%s", last, stderr.String())
}
