package main

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/chryscloud/chrysalis-go/internal/testx"
)

// The CLI as the issue names it: a real ffmpeg pushes RTMP into
// `chrysalis ingest --listen`; every packet of the clip arrives in Redis and
// the pusher leaving is followed by a reconnect, not an exit.
func TestIngestCLIListenRTMP(t *testing.T) {
	testclip.RequireFFmpeg(t)
	srv := testredis.Start(t, testredis.Options{})
	port := strconv.Itoa(testx.FreePort(t))
	url := "rtmp://127.0.0.1:" + port + "/live/cam"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ing := exec.CommandContext(ctx, ingestTestBinary(t), "ingest", "--camera", "cam", "--listen", "--input", url)
	ing.Env = append(os.Environ(), "CHRYSALIS_REDIS_URL="+srv.URL())
	var stderr strings.Builder
	ing.Stderr = &stderr
	if err := ing.Start(); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	push := func() {
		for attempt := 0; ; attempt++ {
			out, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-re", "-i", testclip.Path("clip720.mp4"),
				"-c", "copy", "-f", "flv", url).CombinedOutput()
			if err == nil {
				return
			}
			if attempt > 50 || ctx.Err() != nil {
				t.Fatalf("ffmpeg push: %v: %s\ningest: %s", err, out, stderr.String())
			}
			time.Sleep(200 * time.Millisecond) // the listener is not up yet
		}
	}
	waitLen := func(want int64) int64 {
		var n int64
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if n, _ = rdb.XLen(ctx, "in_memory_queue_cam").Result(); n >= want {
				break
			}
		}
		time.Sleep(300 * time.Millisecond)
		n, _ = rdb.XLen(ctx, "in_memory_queue_cam").Result()
		return n
	}
	push()
	if n := waitLen(100); n != 100 {
		t.Fatalf("after one push of a 100-packet clip XLEN = %d\ningest: %s", n, stderr.String())
	}
	if ing.ProcessState != nil {
		t.Fatal("ingest exited when the pusher left")
	}
	push() // the ingest listens again
	if n := waitLen(200); n != 200 {
		t.Fatalf("after a second push XLEN = %d, want 200\ningest: %s", n, stderr.String())
	}
	if err := ing.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := ing.Wait(); err != nil {
		t.Fatalf("ingest after SIGINT: %v\n%s", err, stderr.String())
	}
}
