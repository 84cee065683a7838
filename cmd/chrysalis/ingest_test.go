package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

var ingestBin struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// startRedis starts a Redis server for the test and returns it with a
// client on it, closed when the test ends.
func startRedis(t *testing.T) (*testredis.Server, *redis.Client) {
	t.Helper()
	srv := testredis.Start(t, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return srv, rdb
}

// startPiped starts cmd with its stdout piped, for the test to read, and
// its stderr collected in the returned builder.
func startPiped(t *testing.T, cmd *exec.Cmd) (io.ReadCloser, *strings.Builder) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return stdout, stderr
}

// ingestTestBinary builds the chrysalis command once per test binary.
func ingestTestBinary(t *testing.T) string {
	t.Helper()
	ingestBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "chrysalis-ingest-test")
		if err != nil {
			ingestBin.err = err
			return
		}
		ingestBin.path = filepath.Join(dir, "chrysalis")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", ingestBin.path, ".")
		ingestBin.out, ingestBin.err = cmd.CombinedOutput()
	})
	if ingestBin.err != nil {
		t.Fatalf("go build: %v\n%s", ingestBin.err, ingestBin.out)
	}
	return ingestBin.path
}

// runIngestCLI runs the built command and returns its exit code and
// stderr.
func runIngestCLI(t *testing.T, ctx context.Context, args []string, env ...string) (int, string, *exec.Cmd) {
	t.Helper()
	cmd := exec.CommandContext(ctx, ingestTestBinary(t), args...)
	cmd.Env = append(os.Environ(), "CHRYSALIS_REDIS_URL=")
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String(), cmd
	case errors.As(err, &ee):
		return ee.ExitCode(), stderr.String(), cmd
	}
	t.Fatalf("run %v: %v", args, err)
	return -1, "", nil
}

// cliFailure is a command line that must fail with exit code code and one
// line on stderr, "chrysalis: ..." mentioning want.
type cliFailure struct {
	name string
	args []string
	env  string // an extra NAME=value environment entry, or ""
	code int
	want string
}

// checkFailures runs each case as a subtest, within 30 s.
func checkFailures(t *testing.T, cases []cliFailure) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var env []string
			if tc.env != "" {
				env = append(env, tc.env)
			}
			t0 := time.Now()
			code, stderr, _ := runIngestCLI(t, ctx, tc.args, env...)
			t.Logf("exit %d after %v: %s", code, time.Since(t0).Round(time.Millisecond), stderr)
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "chrysalis: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr %q: want one line mentioning %q", stderr, tc.want)
			}
		})
	}
}

// TestIngestCLIBadInput: every failure prints one line on stderr and exits
// 2 (bad usage) or 3 (Redis unreachable).
func TestIngestCLIBadInput(t *testing.T) {
	clip := filepath.Join("..", "..", "testdata", "clip720.mp4")
	checkFailures(t, []cliFailure{
		{"missing camera", []string{"ingest", "--redis-url", "redis://127.0.0.1:1", "--input", clip}, "", exitUsage, "no camera"},
		{"missing input", []string{"ingest", "--redis-url", "redis://127.0.0.1:1", "--camera", "c"}, "", exitUsage, "no input"},
		{"bad redis scheme", []string{"ingest", "--redis-url", "http://127.0.0.1:6379", "--camera", "c", "--input", clip}, "", exitUsage, "bad --redis-url"},
		{"no redis url", []string{"ingest", "--camera", "c", "--input", clip}, "", exitUsage, "no Redis"},
		{"unpaired cameras", []string{"ingest", "--redis-url", "redis://127.0.0.1:1", "--camera", "a", "--camera", "b", "--input", clip}, "", exitUsage, "one --input per --camera"},
		{"unknown flag", []string{"ingest", "--bogus"}, "", exitUsage, "unknown flag"},
		{"listen on a file", []string{"ingest", "--redis-url", "redis://127.0.0.1:1", "--camera", "c", "--input", clip, "--listen"}, "", exitUsage, "Listen needs a URL"},
		{"unreachable redis", []string{"ingest", "--redis-url", "redis://127.0.0.1:1", "--camera", "c", "--input", clip}, "", exitCache, "unreachable"},
	})
}

// TestIngestCLIFileAndSignal: a file ingested once exits 0 with every
// packet in Redis; a looping real-time ingest stops cleanly on SIGINT
// (exit 0) after flushing.
func TestIngestCLIFileAndSignal(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	clip := filepath.Join("..", "..", "testdata", "clip720.mp4")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rc, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: srv.URL()}, rediscache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()

	code, stderr, _ := runIngestCLI(t, ctx, []string{"ingest", "--camera", "once", "--input", clip, "--max-len", "1000"},
		"CHRYSALIS_REDIS_URL="+srv.URL())
	n, _ := rc.Client().XLen(ctx, rediscache.QueueKey("once")).Result()
	if code != 0 || n != 100 {
		t.Fatalf("one pass: exit %d, XLEN %d (want 0, 100)\n%s", code, n, stderr)
	}

	cmd := exec.CommandContext(ctx, ingestTestBinary(t), "ingest", "--redis-url", srv.URL(), "--camera", "sig",
		"--input", clip, "--realtime", "--loop")
	var buf bytes.Buffer
	cmd.Stderr = &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for 20 packets in Redis (a condition, not a fixed sleep).
	for {
		if n, _ := rc.Client().XLen(ctx, rediscache.QueueKey("sig")).Result(); n >= 20 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("20 packets never arrived\n%s", buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t0 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	took := time.Since(t0)
	n, _ = rc.Client().XLen(ctx, rediscache.QueueKey("sig")).Result()
	t.Logf("SIGINT: exit %v after %v, XLEN %d", err, took.Round(time.Millisecond), n)
	if err != nil || took > 3*time.Second || n < 20 {
		t.Fatalf("SIGINT: %v after %v, XLEN %d\n%s", err, took, n, buf.String())
	}
}
