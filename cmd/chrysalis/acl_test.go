package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chryscloud/chrysalis-go/cache/rediscache"
)

// Least privilege on a real redis-server: every reading command works as a
// user with read rights only (`+@read`; PING is not among them), and the
// ingest works as a user whose rights stop at its own camera's keys.
func TestACLLeastPrivilege(t *testing.T) {
	srv := redisWithClip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	const cam2 = "cam2"
	for _, args := range [][]any{
		{"ACL", "SETUSER", "reader", "on", ">rpw", "~*", "+@read"},
		{"ACL", "SETUSER", "ingester", "on", ">ipw", "resetkeys",
			"~" + rediscache.QueueKey(cam2), "~" + rediscache.IndexKey(cam2), "~" + rediscache.CodecKey(cam2), "~" + rediscache.AccessKey(cam2),
			"+@read", "+@write"},
	} {
		if err := admin.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	reader := fmt.Sprintf("redis://reader:rpw@%s/0", srv.Addr())
	dir := t.TempDir()
	at := strconv.FormatInt(clipT0+70*40, 10)
	for _, args := range [][]string{
		{"probe", "--camera", "cam"},
		{"latest", "--camera", "cam", "-o", filepath.Join(dir, "l.jpg")},
		{"snapshot", "--camera", "cam", "--at", at, "-o", filepath.Join(dir, "s.jpg")},
		{"export", "--camera", "cam", "--from", strconv.FormatInt(clipT0, 10), "--to", at, "-o", filepath.Join(dir, "e.mp4")},
		{"export", "--camera", "cam", "--from", strconv.FormatInt(clipT0, 10), "--to", strconv.FormatInt(clipT0+400, 10), "-o", dir + "/frames/"},
	} {
		code, stderr, _ := runIngestCLI(t, ctx, append(args, "--redis-url", reader))
		if code != 0 {
			t.Errorf("as reader: %v: exit %d: %s", args[0], code, stderr)
		}
	}
	// watch as the reader: the probe and a screenshot over HTTP.
	base := startWatch(t, []string{"--camera", "cam", "--http", "127.0.0.1:0", "--redis-url", reader})
	for _, p := range []string{"/api/probe/cam", "/api/screenshot/cam?at=" + at, "/api/export/cam?last=1s"} {
		if code := status(t, base, p, ""); code != 200 {
			t.Errorf("watch as reader: GET %s: %d", p, code)
		}
	}

	// The ingest as a user with write rights on cam2's keys only.
	ingester := fmt.Sprintf("redis://ingester:ipw@%s/0", srv.Addr())
	clip := filepath.Join("..", "..", "testdata", "clip720.mp4")
	code, stderr, _ := runIngestCLI(t, ctx, []string{"ingest", "--redis-url", ingester, "--camera", cam2, "--input", clip, "--max-len", "1000"})
	if n, _ := admin.XLen(ctx, rediscache.QueueKey(cam2)).Result(); code != 0 || n != 100 {
		t.Errorf("ingest as a per-camera user: exit %d, XLEN %d (want 0, 100): %s", code, n, stderr)
	}
	// ... and it cannot write another camera: a file ingest refused for
	// good ends at once with one line and exit 3 (it retried forever
	// before).
	octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
	defer ocancel()
	code, stderr, _ = runIngestCLI(t, octx, []string{"ingest", "--redis-url", ingester, "--camera", "cam3", "--input", clip, "--max-len", "1000"})
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	if n, _ := admin.XLen(ctx, rediscache.QueueKey("cam3")).Result(); code != 3 || n != 0 ||
		!strings.HasPrefix(last, `chrysalis: ingest: camera "cam3": `) || !strings.Contains(last, "NOPERM") {
		t.Errorf("ingest of another camera as the per-camera user: exit %d, XLEN %d, last line %q", code, n, last)
	}
}
