package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

func TestRecordCLIBadInput(t *testing.T) {
	srv := redisWithClip(t)
	url := "CHRYSALIS_REDIS_URL=" + srv.URL()
	out := t.TempDir()
	checkFailures(t, []cliFailure{
		{"no camera", []string{"record", "--out", out}, url, exitUsage, "no camera"},
		{"no out", []string{"record", "--camera", "cam"}, url, exitUsage, "no --out"},
		{"camera path", []string{"record", "--camera", "../x", "--out", out}, url, exitUsage, "cannot name a directory"},
		{"on and off", []string{"record", "--camera", "cam", "--on", "--off"}, url, exitUsage, "exclude"},
		{"on with out", []string{"record", "--camera", "cam", "--on", "--out", out}, url, exitUsage, "only set the switch"},
		{"bad keep", []string{"record", "--camera", "cam", "--out", out, "--keep", "lots"}, url, exitUsage, "bad --keep"},
		{"bad segment", []string{"record", "--camera", "cam", "--out", out, "--segment", "0s"}, url, exitUsage, "--segment"},
		{"no redis", []string{"record", "--camera", "cam", "--out", out}, "", exitUsage, "no Redis"},
		{"unknown camera", []string{"record", "--camera", "nope", "--out", out}, url, exitNotFound, "unknown camera"},
	})
}

func TestParseKeep(t *testing.T) {
	for _, tc := range []struct {
		in   string
		age  time.Duration
		size int64
	}{{"1h", time.Hour, 0}, {"500MB", 0, 500e6}, {"2GiB", 0, 2 << 30}, {"100 kb", 0, 100e3}, {"1024B", 0, 1024}} {
		age, size, err := parseKeep(tc.in)
		if err != nil || age != tc.age || size != tc.size {
			t.Errorf("parseKeep(%q) = %v, %d, %v; want %v, %d", tc.in, age, size, err, tc.age, tc.size)
		}
	}
	for _, bad := range []string{"", "-1h", "0s", "MB", "-5MB", "5XB"} {
		if _, _, err := parseKeep(bad); err == nil {
			t.Errorf("parseKeep(%q): no error", bad)
		}
	}
}

// TestRecordCLI runs `chrysalis record` on a live camera in Redis, switches
// it on and off with `record --on/--off`, and stops it with SIGTERM: every
// segment is finalised and plays.
func TestRecordCLI(t *testing.T) {
	clip := testclip.Load(t, "clip720.mp4")
	srv := testredis.Start(t, testredis.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rc, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: srv.URL()}, rediscache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	live := clip.Live(t, rc, "cam", 4*time.Second)
	defer live.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	key := rediscache.AccessKey("cam")
	if err := rdb.HSet(ctx, key, "store", "0").Err(); err != nil {
		t.Fatal(err)
	}
	bin := ingestTestBinary(t)
	out := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, "record", "--camera", "cam", "--out", out, "--segment", "1s", "--pre-roll", "2s")
	cmd.Env = append(os.Environ(), "CHRYSALIS_REDIS_URL="+srv.URL())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.Contains(line, "following the store switch") {
		t.Fatalf("stdout %q, %v; stderr %s", line, err, stderr.String())
	}
	setSwitch := func(flag, want string) {
		t.Helper()
		b, err := exec.CommandContext(ctx, bin, "record", flag, "--camera", "cam", "--redis-url", srv.URL()).CombinedOutput()
		if err != nil {
			t.Fatalf("record %s: %v: %s", flag, err, b)
		}
		if v := rdb.HGet(ctx, key, "store").Val(); v != want {
			t.Fatalf("after record %s store = %q", flag, v)
		}
	}
	finished := func() []string {
		segs, _ := filepath.Glob(filepath.Join(out, "cam", "cam_*.mp4"))
		return segs
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("%s: timed out; stderr %s", what, stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	setSwitch("--on", "1")
	// The 2 s pre-roll is one GOP: one segment from the cache at once.
	wait("a segment", func() bool { return len(finished()) >= 1 })
	setSwitch("--off", "0")
	wait("switched off", func() bool {
		parts, _ := filepath.Glob(filepath.Join(out, "cam", ".*.part"))
		return len(parts) == 0
	})
	n := len(finished())
	setSwitch("--on", "1")
	wait("recording again", func() bool {
		parts, _ := filepath.Glob(filepath.Join(out, "cam", ".*.part"))
		return len(parts) == 1
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("record: %v; stderr %s", err, stderr.String())
	}
	segs := finished()
	if len(segs) <= n {
		t.Fatalf("SIGTERM left %d segments, %d before; the open one was not finalised", len(segs), n)
	}
	if parts, _ := filepath.Glob(filepath.Join(out, "cam", ".*.part")); len(parts) != 0 {
		t.Errorf("temporary files left after SIGTERM: %v", parts)
	}
	for _, s := range segs {
		if info := testclip.Probe(t, s); info.Frames == 0 || info.Codec != "h264" {
			t.Errorf("%s: %+v", s, info)
		}
	}
}
