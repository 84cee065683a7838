package main

import (
	"context"
	"encoding/json"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

const clipT0 = int64(1_760_000_000_000)

// redisWithClip starts a redis-server holding clip720 as camera "cam",
// packets 40 ms apart from clipT0, written by the independent test writer.
func redisWithClip(t *testing.T) *testredis.Server {
	t.Helper()
	srv := testredis.Start(t, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	testclip.Load(t, "clip720.mp4").WriteRedis(t, rdb, "cam", clipT0, 40)
	return srv
}

func TestReadCommandsBadInput(t *testing.T) {
	srv := redisWithClip(t)
	ctx := context.Background()
	url := "CHRYSALIS_REDIS_URL=" + srv.URL()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		env  string
		code int
		want string
	}{
		{"probe no camera", []string{"probe"}, url, exitUsage, "no camera"},
		{"probe no redis", []string{"probe", "--camera", "cam"}, "", exitUsage, "no Redis"},
		{"probe bad url", []string{"probe", "--camera", "cam", "--redis-url", "http://x"}, "", exitUsage, "bad --redis-url"},
		{"probe unreachable", []string{"probe", "--camera", "cam", "--redis-url", "redis://127.0.0.1:1"}, "", exitCache, "unreachable"},
		{"probe unknown camera", []string{"probe", "--camera", "nope"}, url, exitNotFound, "unknown camera"},
		{"probe stray arg", []string{"probe", "--camera", "cam", "extra"}, url, exitUsage, "unexpected argument"},
		{"latest no output", []string{"latest", "--camera", "cam"}, url, exitUsage, "no output"},
		{"latest bad extension", []string{"latest", "--camera", "cam", "-o", "x.gif"}, url, exitUsage, ".jpg, .jpeg or .png"},
		{"latest unknown camera", []string{"latest", "--camera", "nope", "-o", filepath.Join(dir, "x.jpg")}, url, exitNotFound, "unknown camera"},
		{"snapshot bad time", []string{"snapshot", "--camera", "cam", "--at", "noon", "-o", "x.jpg"}, url, exitUsage, "bad --at"},
		{"snapshot seconds not ms", []string{"snapshot", "--camera", "cam", "--at", "1760000000", "-o", "x.jpg"}, url, exitUsage, "milliseconds"},
		{"snapshot before the cache", []string{"snapshot", "--camera", "cam", "--at", strconv.FormatInt(clipT0-1000, 10), "-o", filepath.Join(dir, "x.jpg")}, url, exitNotFound, "no keyframe"},
		{"snapshot unknown flag", []string{"snapshot", "--camera", "cam", "--when", "-5s"}, url, exitUsage, "unknown flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr, _ := runIngestCLI(t, ctx, tc.args, tc.env)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code != tc.code || len(lines) != 1 || !strings.Contains(stderr, tc.want) || !strings.HasPrefix(stderr, "chrysalis: ") {
				t.Fatalf("exit %d (want %d), stderr %q (want one line containing %q)", code, tc.code, stderr, tc.want)
			}
		})
	}
}

func TestReadCommands(t *testing.T) {
	srv := redisWithClip(t)
	env := "CHRYSALIS_REDIS_URL=" + srv.URL()
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(ingestTestBinary(t), args...)
		cmd.Env = append(os.Environ(), env)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return string(out)
	}
	var p chrysalis.Probe
	if err := json.Unmarshal([]byte(run("probe", "--camera", "cam", "--json")), &p); err != nil {
		t.Fatal(err)
	}
	if p.Frames != 100 || p.Keyframes != 2 || p.StartMS != clipT0 || p.EndMS != clipT0+99*40 || p.Codec != "h264" || p.Width != 1280 || p.FPS < 25.2 || p.FPS > 25.3 {
		t.Fatalf("probe --json: %+v", p)
	}
	if out := run("probe", "--camera", "cam"); !strings.Contains(out, "frames     100") {
		t.Fatalf("probe text: %s", out)
	}
	var r imageResult
	json.Unmarshal([]byte(run("latest", "--camera", "cam", "-o", filepath.Join(dir, "l.jpg"), "--width", "640", "--json")), &r)
	if r.TimestampMS != clipT0+99*40 || r.Width != 640 || r.Height != 360 {
		t.Fatalf("latest: %+v", r)
	}
	f, _ := os.Open(filepath.Join(dir, "l.jpg"))
	im, err := jpeg.Decode(f)
	f.Close()
	if err != nil || im.Bounds().Dx() != 640 {
		t.Fatalf("latest wrote a bad JPEG: %v", err)
	}
	json.Unmarshal([]byte(run("snapshot", "--camera", "cam", "--at", strconv.FormatInt(clipT0+70*40, 10), "-o", filepath.Join(dir, "s.png"), "--json")), &r)
	if r.TimestampMS != clipT0+50*40 || !r.Keyframe {
		t.Fatalf("snapshot: %+v, want the keyframe at packet 50", r)
	}
	f, _ = os.Open(filepath.Join(dir, "s.png"))
	im, err = png.Decode(f)
	f.Close()
	if err != nil || im.Bounds().Dx() != 1280 {
		t.Fatalf("snapshot wrote a bad PNG: %v", err)
	}
}
