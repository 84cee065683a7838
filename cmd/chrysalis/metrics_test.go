package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/internal/promtest"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

// lines collects a process's stderr lines as they come.
type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l.mu.Lock()
		l.all = append(l.all, sc.Text())
		l.mu.Unlock()
	}
}

// find returns the first line matching re (its submatches), or nil.
func (l *lines) find(re *regexp.Regexp) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.all {
		if m := re.FindStringSubmatch(s); m != nil {
			return m
		}
	}
	return nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

// TestIngestCLIMetrics: `chrysalis ingest --metrics` over a real Redis and
// a file played as a live camera serves /metrics in the Prometheus text
// format with the per-camera series, whose counters move between two
// scrapes; /healthz and /readyz answer 200; --status-every logs a status
// line.
func TestIngestCLIMetrics(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	clip := filepath.Join("..", "..", "testdata", "clip720.mp4")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ingestTestBinary(t), "ingest", "--redis-url", srv.URL(), "--camera", "m1",
		"--input", clip, "--realtime", "--loop", "--max-len", "500", "--metrics", "127.0.0.1:0", "--status-every", "500ms")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out lines
	done := make(chan struct{})
	go func() { defer close(done); out.read(stderr) }()
	defer func() {
		cmd.Process.Signal(syscall.SIGINT)
		<-done
		if err := cmd.Wait(); err != nil {
			t.Errorf("exit: %v\n%s", err, out.String())
		}
	}()

	// waitLine waits for a stderr line matching re.
	waitLine := func(re *regexp.Regexp) []string {
		t.Helper()
		for {
			if m := out.find(re); m != nil {
				return m
			}
			select {
			case <-done:
				t.Fatalf("ingest exited before a line matching %v\n%s", re, out.String())
			case <-ctx.Done():
				t.Fatalf("no line matching %v\n%s", re, out.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	base := waitLine(regexp.MustCompile(`url=(http://\S+)/metrics`))[1]
	t.Logf("metrics at %s", base)

	// waitValue scrapes until the series reaches at least min.
	waitValue := func(name string, min float64) promtest.Families {
		t.Helper()
		for {
			f := promtest.Scrape(t, base+"/metrics", "")
			if v, ok := f.Value(name, "camera", "m1"); ok && v >= min {
				return f
			}
			if ctx.Err() != nil {
				t.Fatalf("%s never reached %v\n%s", name, min, out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	first := waitValue("chrysalis_ingest_written_total", 5)
	for _, name := range []string{"chrysalis_ingest_packets_total", "chrysalis_ingest_dropped_total",
		"chrysalis_ingest_reconnects_total", "chrysalis_ingest_connected", "chrysalis_ingest_buffered_packets",
		"chrysalis_cache_frames", "chrysalis_cache_age_seconds", "chrysalis_cache_span_seconds", "chrysalis_cache_up"} {
		first.Must(t, name, "camera", "m1")
	}
	if first.Find("go_goroutines") == nil || first.Find("process_cpu_seconds_total") == nil {
		t.Errorf("no Go runtime or process series")
	}
	p1 := first.Must(t, "chrysalis_ingest_packets_total", "camera", "m1")
	f1 := first.Must(t, "chrysalis_cache_frames", "camera", "m1")
	// At 25 fps, 25 more packets take about a second.
	second := waitValue("chrysalis_ingest_packets_total", p1+25)
	p2 := second.Must(t, "chrysalis_ingest_packets_total", "camera", "m1")
	f2 := second.Must(t, "chrysalis_cache_frames", "camera", "m1")
	age := second.Must(t, "chrysalis_cache_age_seconds", "camera", "m1")
	t.Logf("packets %v -> %v, cache frames %v -> %v, cache age %.3f s, connected %v", p1, p2, f1, f2, age,
		second.Must(t, "chrysalis_ingest_connected", "camera", "m1"))
	if f2 <= f1 || age < 0 || age > 2 || second.Must(t, "chrysalis_ingest_connected", "camera", "m1") != 1 {
		t.Errorf("cache frames %v -> %v, age %v, want growing frames, a fresh newest packet, connected", f1, f2, age)
	}

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "ok" {
			t.Errorf("%s: %d %q", path, resp.StatusCode, b)
		}
	}
	st := waitLine(regexp.MustCompile(`msg="ingest status" cameras=1 live=1 packets=\d+ pkt_per_s=(\S+)`))
	t.Logf("status line: %s", st[0])
}

// TestIngestCLIMetricsBadAddr: a bad --metrics address is one usage line.
func TestIngestCLIMetricsBadAddr(t *testing.T) {
	clip := filepath.Join("..", "..", "testdata", "clip720.mp4")
	checkFailures(t, []cliFailure{
		{"no port", []string{"ingest", "--redis-url", "redis://127.0.0.1:1", "--camera", "c", "--input", clip, "--metrics", "localhost"}, "", exitUsage, "bad --metrics"},
		{"negative status", []string{"ingest", "--redis-url", "redis://127.0.0.1:1", "--camera", "c", "--input", clip, "--status-every", "-1s"}, "", exitUsage, "must not be negative"},
	})
}
