package main

import (
	"encoding/json"
	"fmt"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

const clipT0 = int64(1_760_000_000_000)

// redisWithClip starts a redis-server holding clip720 as camera "cam",
// packets 40 ms apart from clipT0, written by the independent test writer.
func redisWithClip(t *testing.T) *testredis.Server {
	t.Helper()
	srv, rdb := startRedis(t)
	testclip.Load(t, "clip720.mp4").WriteRedis(t, rdb, "cam", clipT0, 40)
	return srv
}

func TestReadCommandsBadInput(t *testing.T) {
	srv := redisWithClip(t)
	url := "CHRYSALIS_REDIS_URL=" + srv.URL()
	dir := t.TempDir()
	checkFailures(t, []cliFailure{
		{"probe no camera", []string{"probe"}, url, exitUsage, "no camera"},
		{"probe no redis", []string{"probe", "--camera", "cam"}, "", exitUsage, "no Redis"},
		{"probe bad url", []string{"probe", "--camera", "cam", "--redis-url", "http://x"}, "", exitUsage, "bad --redis-url"},
		{"probe unreachable", []string{"probe", "--camera", "cam", "--redis-url", "redis://127.0.0.1:1"}, "", exitCache, "unreachable"},
		{"probe unknown camera", []string{"probe", "--camera", "nope"}, url, exitNotFound, "unknown camera"},
		{"probe stray arg", []string{"probe", "--camera", "cam", "extra"}, url, exitUsage, "unexpected argument"},
		{"latest no output", []string{"latest", "--camera", "cam"}, url, exitUsage, "no output"},
		{"latest bad extension", []string{"latest", "--camera", "cam", "-o", "x.gif"}, url, exitUsage, ".jpg, .jpeg or .png"},
		{"latest unknown camera", []string{"latest", "--camera", "nope", "-o", filepath.Join(dir, "x.jpg")}, url, exitNotFound, "unknown camera"},
		{"latest width too large", []string{"latest", "--camera", "cam", "-o", filepath.Join(dir, "x.jpg"), "--width", "100000"}, url, exitUsage, "up to 16384"},
		{"latest negative height", []string{"latest", "--camera", "cam", "-o", filepath.Join(dir, "x.jpg"), "--height", "-5"}, url, exitUsage, "--height -5"},
		{"latest width beyond 4x", []string{"latest", "--camera", "cam", "-o", filepath.Join(dir, "x.jpg"), "--width", "6000"}, url, exitUsage, "at most 4 times the camera's 1280x720"},
		{"snapshot bad time", []string{"snapshot", "--camera", "cam", "--at", "noon", "-o", "x.jpg"}, url, exitUsage, "bad --at"},
		{"snapshot seconds not ms", []string{"snapshot", "--camera", "cam", "--at", "1760000000", "-o", "x.jpg"}, url, exitUsage, "milliseconds"},
		{"snapshot before the cache", []string{"snapshot", "--camera", "cam", "--at", strconv.FormatInt(clipT0-1000, 10), "-o", filepath.Join(dir, "x.jpg")}, url, exitNotFound, "no keyframe"},
		// Times a cache id cannot name are usage errors naming the flag, not
		// wrapped ids (1960 used to return the newest keyframe).
		{"snapshot before 1970", []string{"snapshot", "--camera", "cam", "--at", "1960-01-01T00:00:00Z", "-o", filepath.Join(dir, "x.jpg")}, url, exitUsage, `bad --at "1960-01-01T00:00:00Z": bad time: must be between 1970-01-01`},
		{"snapshot relative before 1970", []string{"snapshot", "--camera", "cam", "--at", "-600000h", "-o", filepath.Join(dir, "x.jpg")}, url, exitUsage, `bad --at "-600000h": bad time`},
		{"export zero from", []string{"export", "--camera", "cam", "--from", "0001-01-01T00:00:00Z", "-o", dir + "/"}, url, exitUsage, `bad --from "0001-01-01T00:00:00Z": bad time`},
		{"export to year 10000", []string{"export", "--camera", "cam", "--from", "-5s", "--to", "10000-01-01T00:00:00Z", "-o", filepath.Join(dir, "y.mp4")}, url, exitUsage, `bad --to "10000-01-01T00:00:00Z"`},
		{"export to year 10000 in ms", []string{"export", "--camera", "cam", "--from", "-5s", "--to", "253402300800000", "-o", filepath.Join(dir, "y.mp4")}, url, exitUsage, `bad --to "253402300800000": bad time`},
		{"snapshot unknown flag", []string{"snapshot", "--camera", "cam", "--when", "-5s"}, url, exitUsage, "unknown flag"},
		{"export no output", []string{"export", "--camera", "cam", "--from", "-5s"}, url, exitUsage, "no output"},
		{"export bad extension", []string{"export", "--camera", "cam", "--from", "-5s", "-o", "x.avi"}, url, exitUsage, ".mp4 file or to a directory"},
		{"export from after to", []string{"export", "--camera", "cam", "--from", "-1s", "--to", "-5s", "-o", "x.mp4"}, url, exitUsage, "is after --to"},
		{"export bad format", []string{"export", "--camera", "cam", "--from", "-5s", "-o", dir + "/", "--format", "gif"}, url, exitUsage, "want jpg or png"},
		{"export empty window", []string{"export", "--camera", "cam", "--from", strconv.FormatInt(clipT0+200*40, 10), "--to", strconv.FormatInt(clipT0+300*40, 10), "-o", filepath.Join(dir, "e.mp4")}, url, exitNotFound, "no frames in the window"},
		{"export unknown camera", []string{"export", "--camera", "nope", "--from", "-5s", "-o", filepath.Join(dir, "u.mp4")}, url, exitNotFound, "unknown camera"},
		{"version bad url", []string{"version", "--redis-url", "ftp://x"}, "", exitUsage, "bad --redis-url"},
		{"version unreachable", []string{"version", "--redis-url", "redis://127.0.0.1:1"}, "", exitCache, "unreachable"},
		{"demo bad fps", []string{"demo", "--fps", "0"}, "", exitUsage, "--fps must be positive"},
		{"demo negative max-clip", []string{"demo", "--max-clip", "-1s"}, "", exitUsage, "--max-clip must not be negative"},
		{"demo listen without input", []string{"demo", "--listen"}, "", exitUsage, "--listen needs --input"},
		{"demo redis without input", []string{"demo", "--redis-url", "redis://127.0.0.1:1"}, "", exitUsage, "name the camera with --input"},
		{"demo busy port", []string{"demo", "--http", "256.0.0.1:99999"}, "", exitUsage, "cannot serve the preview"},
	})
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
	// export: remux from the keyframe at or before --from (packet 50 for
	// --from at packet 60) to the last packet at or before --to (packet 89).
	var e exportResult
	json.Unmarshal([]byte(run("export", "--camera", "cam", "--from", strconv.FormatInt(clipT0+60*40, 10), "--to",
		strconv.FormatInt(clipT0+89*40, 10), "-o", filepath.Join(dir, "e.mp4"), "--json")), &e)
	if e.Frames != 40 || e.StartMS != clipT0+50*40 || e.EndMS != clipT0+89*40 {
		t.Fatalf("export: %+v, want packets 50..89", e)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
		"stream=codec_name,nb_read_frames:format=duration", "-of", "default=nw=1", filepath.Join(dir, "e.mp4")).Output()
	if err != nil || !strings.Contains(string(probe), "nb_read_frames=40") || !strings.Contains(string(probe), "duration=1.6") {
		t.Fatalf("exported MP4: %v\n%s (want 40 frames, 1.6 s)", err, probe)
	}
	json.Unmarshal([]byte(run("export", "--camera", "cam", "--from", strconv.FormatInt(clipT0+60*40, 10), "--to",
		strconv.FormatInt(clipT0+69*40, 10), "-o", filepath.Join(dir, "frames")+"/", "--format", "png", "--json")), &e)
	pngs, _ := filepath.Glob(filepath.Join(dir, "frames", "*.png"))
	if e.Frames != 10 || len(pngs) != 10 || e.StartMS != clipT0+60*40 {
		t.Fatalf("export to images: %+v, %d files", e, len(pngs))
	}
	if out := run("version"); !strings.Contains(out, "FFmpeg    5.") || !strings.Contains(out, "OpenCV    4.") {
		t.Fatalf("version: %s", out)
	}
	if out := run("version", "--redis-url", srv.URL()); !strings.Contains(out, "Redis     7.") {
		t.Fatalf("version with Redis: %s", out)
	}
	f, _ = os.Open(filepath.Join(dir, "s.png"))
	im, err = png.Decode(f)
	f.Close()
	if err != nil || im.Bounds().Dx() != 1280 {
		t.Fatalf("snapshot wrote a bad PNG: %v", err)
	}
}

// A library error for a time a cache id cannot name is bad input too.
func TestExitCodeBadTime(t *testing.T) {
	if c := exitCode(fmt.Errorf("camera %q: %w", "cam", cache.ErrBadTime)); c != exitUsage {
		t.Fatalf("exit code %d for ErrBadTime, want %d", c, exitUsage)
	}
}
