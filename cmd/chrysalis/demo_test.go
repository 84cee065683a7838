package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

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
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlRe := regexp.MustCompile(`preview\s+(http://\S+)`)
	var log strings.Builder
	previewOK := make(chan string, 1)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		log.WriteString(line + "\n")
		if m := urlRe.FindStringSubmatch(line); m != nil {
			go func(base string) { previewOK <- checkPreview(base) }(m[1])
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, log.String(), stderr.String())
	}
	t.Logf("demo output:\n%s", log.String())
	select {
	case msg := <-previewOK:
		if msg != "" {
			t.Fatalf("preview: %s", msg)
		}
	default:
		t.Fatal("the demo never printed its preview URL")
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
	deadline := time.Now().Add(10 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
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
			return ""
		}
		last = "page " + page.Status + ", snapshot " + snap.Status
	}
	return "no answer in 10 s: " + last
}
