package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
)

// TestWatchCLIBadInput: each failure is one stderr line and its exit code.
func TestWatchCLIBadInput(t *testing.T) {
	srv := redisWithClip(t)
	url := "CHRYSALIS_REDIS_URL=" + srv.URL()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	checkFailures(t, []cliFailure{
		{"no camera", []string{"watch"}, url, exitUsage, "no camera"},
		{"empty camera", []string{"watch", "--camera", ""}, url, exitUsage, "--camera is empty"},
		{"camera twice", []string{"watch", "--camera", "cam", "--camera", "cam"}, url, exitUsage, "given twice"},
		{"bad http", []string{"watch", "--camera", "cam", "--http", "8080"}, url, exitUsage, "bad --http"},
		{"bad http port", []string{"watch", "--camera", "cam", "--http", "127.0.0.1:99999"}, url, exitUsage, "cannot serve"},
		{"http in use", []string{"watch", "--camera", "cam", "--http", busy.Addr().String()}, url, exitUsage, "cannot serve"},
		{"no redis", []string{"watch", "--camera", "cam"}, "", exitUsage, "no Redis"},
		{"bad redis url", []string{"watch", "--camera", "cam", "--redis-url", "http://x"}, "", exitUsage, "bad --redis-url"},
		{"stray arg", []string{"watch", "--camera", "cam", "extra"}, url, exitUsage, "unexpected argument"},
		{"unreachable", []string{"watch", "--camera", "cam", "--http", "127.0.0.1:0", "--redis-url", "redis://127.0.0.1:1"}, "", exitCache, "unreachable"},
		{"unknown camera", []string{"watch", "--camera", "cam", "--camera", "nope", "--http", "127.0.0.1:0"}, url, exitNotFound, "unknown camera"},
	})
}

// TestWatchCLI serves the page for a camera in Redis, then stops cleanly
// on SIGINT.
func TestWatchCLI(t *testing.T) {
	srv := redisWithClip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ingestTestBinary(t), "watch", "--camera", "cam", "--http", "127.0.0.1:0", "--redis-url", srv.URL())
	cmd.Env = append(os.Environ(), "CHRYSALIS_REDIS_URL=")
	stdout, stderr := startPiped(t, cmd)
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Wait()
		t.Fatalf("no URL printed: %v; stderr %s", err, stderr.String())
	}
	t.Logf("stdout: %s", strings.TrimSpace(line))
	i := strings.Index(line, "http://")
	if i < 0 {
		t.Fatalf("no URL in %q", line)
	}
	base := strings.Fields(line[i:])[0]
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("not served on loopback: %s", base)
	}
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(strings.TrimSuffix(base, "/") + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, body := get("/"); code != 200 || !strings.Contains(string(body), "Chrysalis watch") {
		t.Fatalf("GET /: %d", code)
	}
	code, body := get("/api/probe/cam")
	var p chrysalis.Probe
	if err := json.Unmarshal(body, &p); code != 200 || err != nil || p.Frames != 100 || p.Codec != "h264" || p.Width != 1280 {
		t.Fatalf("probe: %d %s", code, body)
	}
	if code, _ := get("/api/screenshot/cam?at=" + "1760000002000"); code != 200 {
		t.Fatalf("screenshot: %d", code)
	}
	if code, body := get("/api/probe/nope"); code != 404 {
		t.Fatalf("unknown camera: %d %s", code, body)
	}

	// A viewer of the live MJPEG stream, connected while Ctrl-C comes.
	resp, err := http.Get(strings.TrimSuffix(base, "/") + "/mjpeg/stream/cam")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	part := make([]byte, 64)
	if _, err := io.ReadFull(resp.Body, part); err != nil || !strings.Contains(string(part), "image/jpeg") {
		t.Fatalf("mjpeg stream: %v %q", err, part)
	}

	// Ctrl-C.
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) || err != nil {
		t.Fatalf("after SIGINT: %v; stderr %s", err, stderr.String())
	}
	t.Logf("stopped %v after SIGINT; stderr %q", time.Since(start).Round(time.Millisecond), stderr.String())
	if time.Since(start) > 5*time.Second {
		t.Fatalf("shutdown took %v", time.Since(start))
	}
}
