package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/chryscloud/chrysalis-go/internal/testx"
)

// TestIngestCLIListenRTMPCaptureTime: ffmpeg pushes a 25 fps clip, looped,
// for 20 s of stream into `chrysalis ingest --listen` writing into a real
// redis-server. RTMP delivers packets in bursts (and the stream probe holds
// the first second back), yet the ids are one per frame interval: no two
// share a millisecond, and the edge proxy's Probe fps, XLEN / ((last.ms -
// first.ms) / 1000), is within 1% of 25.
func TestIngestCLIListenRTMPCaptureTime(t *testing.T) {
	testclip.RequireFFmpeg(t)
	srv := testredis.Start(t, testredis.Options{})
	port := strconv.Itoa(testx.FreePort(t))
	url := "rtmp://127.0.0.1:" + port + "/live/cam"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ing := exec.CommandContext(ctx, ingestTestBinary(t), "ingest", "--camera", "cam", "--listen", "--input", url)
	ing.Env = append(os.Environ(), "CHRYSALIS_REDIS_URL="+srv.URL())
	var stderr strings.Builder
	ing.Stderr = &stderr
	if err := ing.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if ing.ProcessState == nil {
			_ = ing.Process.Kill()
			_ = ing.Wait()
		}
	}()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	const key = "in_memory_queue_cam"

	pushStart := time.Now()
	for attempt := 0; ; attempt++ {
		out, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-re", "-stream_loop", "-1",
			"-i", testclip.Path("clip720.mp4"), "-t", "20", "-c", "copy", "-f", "flv", url).CombinedOutput()
		if err == nil {
			break
		}
		if attempt > 50 || ctx.Err() != nil {
			t.Fatalf("ffmpeg push: %v: %s\ningest: %s", err, out, stderr.String())
		}
		time.Sleep(200 * time.Millisecond) // the listener is not up yet
		pushStart = time.Now()
	}
	pushEnd := time.Now()
	// Wait until XLEN reaches the 500 packets pushed and stays there.
	var n int64
	stable := time.Now()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		m, err := rdb.XLen(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if m != n {
			n, stable = m, time.Now()
		}
		if (n >= 500 && time.Since(stable) > 500*time.Millisecond) || time.Now().After(deadline) {
			break
		}
	}
	msgs, err := rdb.XRange(ctx, key, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 495 || len(msgs) > 505 {
		t.Fatalf("XLEN %d after a 20 s push at 25 fps, want about 500\ningest: %s", len(msgs), stderr.String())
	}
	if msgs[0].Values["is_keyframe"] != "1" {
		t.Errorf("the first entry is not a keyframe")
	}
	ids := make([]cache.ID, len(msgs))
	shared := 0
	var minGap, maxGap uint64 = math.MaxUint64, 0
	for i, m := range msgs {
		if ids[i], err = cache.ParseID(m.ID); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			continue
		}
		if ids[i].Compare(ids[i-1]) <= 0 {
			t.Fatalf("id %d %v does not increase after %v", i, ids[i], ids[i-1])
		}
		if ids[i].MS == ids[i-1].MS {
			shared++
			continue
		}
		gap := ids[i].MS - ids[i-1].MS
		minGap, maxGap = min(minGap, gap), max(maxGap, gap)
	}
	first, last := ids[0].MS, ids[len(ids)-1].MS
	fps := float64(len(msgs)) / (float64(last-first) / 1000)
	t.Logf("%d entries %v..%v; %d share a millisecond with the previous one; gaps %d..%d ms; Probe fps %.3f; "+
		"first id %v after the push started, last id %v before it ended",
		len(msgs), ids[0], ids[len(ids)-1], shared, minGap, maxGap, fps,
		time.UnixMilli(int64(first)).Sub(pushStart).Round(time.Millisecond),
		pushEnd.Sub(time.UnixMilli(int64(last))).Round(time.Millisecond))
	if shared > 0 {
		t.Errorf("%d entries share a millisecond with the previous one", shared)
	}
	if math.Abs(fps-25)/25 > 0.01 {
		t.Errorf("Probe fps %.3f, want 25 within 1%%", fps)
	}
	// Capture times stay on the wall clock (within MaxClockDrift, 2 s).
	if d := time.UnixMilli(int64(first)).Sub(pushStart); d < -2*time.Second || d > 3*time.Second {
		t.Errorf("first id is %v after the push started", d)
	}
	if err := ing.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := ing.Wait(); err != nil {
		t.Fatalf("ingest after SIGINT: %v\n%s", err, stderr.String())
	}

	// export -o DIR/ over the whole push: one file per frame, as many as
	// the cache holds packets.
	dir := filepath.Join(t.TempDir(), "frames") + "/"
	cmd := exec.CommandContext(ctx, ingestTestBinary(t), "export", "--camera", "cam", "--from", strconv.FormatUint(first, 10),
		"--to", strconv.FormatUint(last, 10), "-o", dir, "--json")
	cmd.Env = append(os.Environ(), "CHRYSALIS_REDIS_URL="+srv.URL())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	var e exportResult
	if err := json.Unmarshal(out, &e); err != nil {
		t.Fatalf("export --json: %v: %s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	t.Logf("export -o DIR/: %d frames, %d files reported, %d on disk, %d cached packets", e.Frames, e.Files, len(files), len(msgs))
	if e.Frames != int64(len(msgs)) || e.Files != e.Frames || len(files) != len(msgs) {
		t.Fatalf("export of the push: %d frames, %d files reported, %d on disk; want %d", e.Frames, e.Files, len(files), len(msgs))
	}
}
