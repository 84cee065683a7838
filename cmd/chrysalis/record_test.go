package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := liveRedis(t, ctx, "cam", 4*time.Second)
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
	stdout, stderr := startPiped(t, cmd)
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

// startRecord runs `chrysalis record args...` against srv and waits for its
// first line on stdout.
func startRecord(t *testing.T, ctx context.Context, srv *testredis.Server, args ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.CommandContext(ctx, ingestTestBinary(t), append([]string{"record"}, args...)...)
	cmd.Env = append(os.Environ(), "CHRYSALIS_REDIS_URL="+srv.URL())
	stdout, stderr := startPiped(t, cmd)
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.Contains(line, "chrysalis record:") {
		t.Fatalf("stdout %q, %v; stderr %s", line, err, stderr.String())
	}
	return cmd, stderr
}

// liveRedis starts a Redis server and plays clip720 live into it as cam,
// with history of it already cached, and returns the server; the feed, its
// cache connection and the server stop when the test ends.
func liveRedis(t *testing.T, ctx context.Context, cam string, history time.Duration) *testredis.Server {
	t.Helper()
	clip := testclip.Load(t, "clip720.mp4")
	srv := testredis.Start(t, testredis.Options{})
	rc, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: srv.URL()}, rediscache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	live := clip.Live(t, rc, cam, history)
	t.Cleanup(live.Stop)
	return srv
}

// waitFor polls cond every 20 ms until ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("%s: timed out", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// record ls lists what record archived; export --archive reads a window
// the cache has trimmed (wholly, or in part) from the archive, byte for
// byte the packets the cache held, where export without it finds nothing.
func TestRecordLsArchiveExport(t *testing.T) {
	clip := testclip.Load(t, "clip720.mp4")
	srv := testredis.Start(t, testredis.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	clip.WriteRedis(t, rdb, "cam", clipT0, 40) // 100 packets, keyframes at 0 and 50
	out := t.TempDir()
	preRoll := time.Since(time.UnixMilli(clipT0)) + time.Hour
	cmd, stderr := startRecord(t, ctx, srv, "--camera", "cam", "--out", out, "--always", "--segment", "1s",
		"--pre-roll", preRoll.Round(time.Hour).String())
	// Packets 0..49 in the first segment, 50..99 in the open second one.
	waitFor(t, ctx, "two segments", func() bool {
		segs, _ := filepath.Glob(filepath.Join(out, "cam", "cam_*.mp4"))
		parts, _ := filepath.Glob(filepath.Join(out, "cam", ".cam_*.part"))
		return len(segs) == 1 && len(parts) == 1
	})
	idx, _ := filepath.Glob(filepath.Join(out, "cam", "cam_*.idx"))
	waitFor(t, ctx, "100 packets indexed", func() bool {
		n := 0
		for _, p := range idx {
			b, _ := os.ReadFile(p)
			n += strings.Count(string(b), "\n")
		}
		idx, _ = filepath.Glob(filepath.Join(out, "cam", "cam_*.idx"))
		return n == 100
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("record: %v; stderr %s", err, stderr.String())
	}

	run := func(args ...string) (int, string, string) {
		t.Helper()
		c := exec.CommandContext(ctx, ingestTestBinary(t), args...)
		c.Env = append(os.Environ(), "CHRYSALIS_REDIS_URL="+srv.URL())
		var so, se strings.Builder
		c.Stdout, c.Stderr = &so, &se
		err := c.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, so.String(), se.String()
	}
	code, so, se := run("record", "ls", "--camera", "cam", "--out", out, "--json")
	if code != 0 {
		t.Fatalf("record ls: exit %d: %s", code, se)
	}
	var segs []segmentJSON
	if err := json.Unmarshal([]byte(so), &segs); err != nil {
		t.Fatalf("record ls --json: %v: %s", err, so)
	}
	if len(segs) != 2 || segs[0].Frames != 50 || segs[1].Frames != 50 || segs[0].FirstID != strconv.FormatInt(clipT0, 10)+"-0" ||
		segs[1].LastID != strconv.FormatInt(clipT0+99*40, 10)+"-0" || segs[1].Start.UnixMilli() != clipT0+50*40 {
		t.Fatalf("record ls: %+v", segs)
	}
	for _, s := range segs {
		if fi, err := os.Stat(s.File); err != nil || fi.Size() != s.Size {
			t.Errorf("%s: size %d; %v", s.File, s.Size, err)
		}
	}
	if code, so, se = run("record", "ls", "--camera", "cam", "--out", out); code != 0 || !strings.HasPrefix(so, "START") ||
		strings.Count(so, "\n") != 3 || !strings.Contains(so, filepath.Base(segs[1].File)) {
		t.Errorf("record ls: exit %d: %s %s", code, so, se)
	}
	if code, _, se = run("record", "ls", "--camera", "nope", "--out", out); code != exitNotFound || !strings.Contains(se, "no archive") {
		t.Errorf("record ls of an unrecorded camera: exit %d: %s", code, se)
	}

	// The cache trims packets 0..79, as XADD MINID would.
	minID := strconv.FormatInt(clipT0+80*40, 10)
	for _, k := range []string{rediscache.QueueKey("cam"), rediscache.IndexKey("cam")} {
		if err := rdb.XTrimMinID(ctx, k, minID).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range []struct{ from, to, kf int }{{30, 75, 0}, {60, 95, 50}} {
		from, to := strconv.FormatInt(clipT0+int64(w.from)*40, 10), strconv.FormatInt(clipT0+int64(w.to)*40, 10)
		if code, _, se := run("export", "--camera", "cam", "--from", from, "--to", to, "-o", filepath.Join(t.TempDir(), "x.mp4")); w.kf == 0 && code != exitNotFound {
			t.Errorf("export [%d,%d] of a trimmed window without --archive: exit %d: %s", w.from, w.to, code, se)
		}
		f := filepath.Join(t.TempDir(), "e.mp4")
		code, so, se := run("export", "--camera", "cam", "--from", from, "--to", to, "-o", f, "--archive", out, "--json")
		if code != 0 {
			t.Fatalf("export [%d,%d] --archive: exit %d: %s", w.from, w.to, code, se)
		}
		var e exportResult
		if err := json.Unmarshal([]byte(so), &e); err != nil || e.Frames != int64(w.to-w.kf+1) {
			t.Errorf("export --json %s: %v", so, err)
		}
		testclip.SamePackets(t, "exported from the archive vs cached", testclip.Load(t, f).Data(), clip.Data()[w.kf:w.to+1])
	}
	if code, _, se := run("export", "--camera", "cam", "--from", "-1s", "-o", t.TempDir()+"/", "--archive", out); code != exitUsage {
		t.Errorf("export images --archive: exit %d: %s", code, se)
	}
}

// countLines counts the lines of a file (a segment index: its packets).
func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// SIGKILL mid-segment: the open segment's temporary file plays up to its
// last fragment, losing at most one GOP plus one packet of what the
// recorder had written (the documented bound); the next run renames it
// into place with its index cut to what it plays, and record ls lists it.
func TestRecordSIGKILL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := liveRedis(t, ctx, "cam", 4*time.Second)
	out := t.TempDir()
	dir := filepath.Join(out, "cam")
	cmd, stderr := startRecord(t, ctx, srv, "--camera", "cam", "--out", out, "--always", "--segment", "1h", "--pre-roll", "5s")
	var part, idx string
	// Two GOPs (fragments, the pre-roll) and 30 packets into the third.
	waitFor(t, ctx, "130 packets indexed", func() bool {
		parts, _ := filepath.Glob(filepath.Join(dir, ".cam_*.mp4.*.part"))
		idxs, _ := filepath.Glob(filepath.Join(dir, "cam_*.idx"))
		if len(parts) != 1 || len(idxs) != 1 {
			return false
		}
		part, idx = parts[0], idxs[0]
		return countLines(t, idx) >= 130
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	written := countLines(t, idx)
	plays := len(testclip.Load(t, part).Packets) // ffprobe
	t.Logf("SIGKILL after %d packets written: the segment plays %d, lost %d (%.2f s)", written, plays, written-plays,
		float64(written-plays)*testclip.LiveStep.Seconds())
	if plays < 100 || written-plays > 50+1 {
		t.Errorf("the killed segment plays %d of %d packets written; want a loss of at most one GOP (50) plus one", plays, written)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "cam_*.mp4")); len(segs) != 0 {
		t.Fatalf("finished segments after SIGKILL: %v", segs)
	}

	// The next run recovers it.
	cmd, stderr = startRecord(t, ctx, srv, "--camera", "cam", "--out", out, "--always", "--segment", "1h", "--pre-roll", "0s")
	recovered := strings.TrimSuffix(idx, ".idx") + ".mp4"
	if _, err := os.Stat(recovered); err != nil {
		t.Fatalf("not recovered: %v; stderr %s", err, stderr.String())
	}
	if _, err := os.Stat(part); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", part, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("record: %v; stderr %s", err, stderr.String())
	}
	if n := countLines(t, idx); n != plays {
		t.Errorf("recovered index: %d packets, the file plays %d", n, plays)
	}
	b, err := exec.CommandContext(ctx, ingestTestBinary(t), "record", "ls", "--camera", "cam", "--out", out, "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var segs []segmentJSON
	if err := json.Unmarshal(b, &segs); err != nil || len(segs) == 0 || segs[0].File != recovered || segs[0].Frames != int64(plays) {
		t.Errorf("record ls after recovery: %v %s", err, b)
	}
	if got := testclip.Load(t, recovered).Packets; len(got) != plays {
		t.Errorf("recovered segment plays %d packets, %d before", len(got), plays)
	}
}

// redis-cli HSET of the store field starts and stops a running `chrysalis
// record` within one second (a segment opens; the segment is finalised).
func TestRecordRedisCLISwitch(t *testing.T) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("no redis-cli")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := liveRedis(t, ctx, "cam", 3*time.Second)
	cli := func(v string) time.Time {
		t.Helper()
		t0 := time.Now()
		if b, err := exec.CommandContext(ctx, "redis-cli", "-u", srv.URL(), "HSET", rediscache.AccessKey("cam"), "store", v).CombinedOutput(); err != nil {
			t.Fatalf("redis-cli: %v: %s", err, b)
		}
		return t0
	}
	cli("0")
	out := t.TempDir()
	parts := func() int {
		p, _ := filepath.Glob(filepath.Join(out, "cam", ".cam_*.part"))
		return len(p)
	}
	finished := func() int {
		p, _ := filepath.Glob(filepath.Join(out, "cam", "cam_*.mp4"))
		return len(p)
	}
	cmd, stderr := startRecord(t, ctx, srv, "--camera", "cam", "--out", out, "--segment", "1h")
	for i := range 2 {
		t0 := cli("1")
		waitFor(t, ctx, "store=1 opens a segment", func() bool { return parts() == 1 })
		on := time.Since(t0)
		t0 = cli("0")
		waitFor(t, ctx, "store=0 finalises it", func() bool { return parts() == 0 && finished() == i+1 })
		off := time.Since(t0)
		t.Logf("redis-cli HSET store 1: recording after %v; store 0: segment finalised after %v", on.Round(time.Millisecond),
			off.Round(time.Millisecond))
		if on > time.Second || off > time.Second {
			t.Errorf("switch took %v on, %v off; want within 1 s", on, off)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("record: %v; stderr %s", err, stderr.String())
	}
}
