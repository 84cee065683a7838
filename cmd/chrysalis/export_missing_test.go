package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

// An export over a window whose cache lost a packet (a gap in the packet
// numbers) cannot decode the frames from the gap to the next keyframe: it
// writes the rest, and says how many are missing and why, on stderr and in
// --json, for images and for MP4. It never reports a short export as whole.
func TestExportReportsMissingFrames(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	clip := testclip.Load(t, "clip720.mp4")
	const step = 40
	clip.WriteRedis(t, rdb, "lossy", clipT0, step)
	// Lose one P-frame inside the first GOP.
	lost := -1
	for i := 5; i+1 < len(clip.Packets); i++ {
		if !clip.Packets[i].Key && !clip.Packets[i+1].Key {
			lost = i
			break
		}
	}
	if lost < 0 {
		t.Fatal("clip720 has no two P-frames in a row")
	}
	next := len(clip.Packets) // the next keyframe after the loss
	for i := lost + 1; i < len(clip.Packets); i++ {
		if clip.Packets[i].Key {
			next = i
			break
		}
	}
	ms := testclip.MS(clipT0, lost, step)
	if n, err := rdb.XDel(t.Context(), "in_memory_queue_lossy", strconv.FormatInt(ms, 10)+"-0").Result(); err != nil || n != 1 {
		t.Fatalf("XDEL: %d %v", n, err)
	}
	wantMissing := int64(next - lost - 1) // undecodable after the gap, up to the keyframe
	from, to := strconv.FormatInt(clipT0, 10), strconv.FormatInt(testclip.MS(clipT0, len(clip.Packets)-1, step), 10)

	for _, out := range []string{filepath.Join(t.TempDir(), "frames") + "/", filepath.Join(t.TempDir(), "lossy.mp4")} {
		cmd := exec.Command(ingestTestBinary(t), "export", "--camera", "lossy", "--from", from, "--to", to, "-o", out, "--json")
		cmd.Env = append(os.Environ(), "CHRYSALIS_REDIS_URL="+srv.URL())
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.Output()
		if err != nil {
			t.Fatalf("export -o %s: %v: %s", out, err, stderr.String())
		}
		var e exportResult
		if err := json.Unmarshal(stdout, &e); err != nil {
			t.Fatalf("export --json: %v: %s", err, stdout)
		}
		t.Logf("-o %s: %d frames, %d missing (%d gaps, %d corrupt); stderr %q", filepath.Base(out), e.Frames, e.Missing, e.Gaps, e.Corrupt, stderr.String())
		if e.Missing != wantMissing {
			t.Errorf("-o %s: %d frames missing, want %d (packet %d lost, next keyframe %d)", out, e.Missing, wantMissing, lost, next)
		}
		if got, want := e.Frames+e.Missing, int64(len(clip.Packets)-1); got != want {
			t.Errorf("-o %s: %d frames + %d missing = %d, want the window's %d packets", out, e.Frames, e.Missing, got, want)
		}
		if !strings.Contains(stderr.String(), "frames of the window are missing") {
			t.Errorf("-o %s: no warning on stderr: %q", out, stderr.String())
		}
		if e.Gaps != 1 || !strings.Contains(stderr.String(), "(1 gap in the packet numbers") {
			t.Errorf("-o %s: %d gaps reported, want 1, and said on stderr", out, e.Gaps)
		}
	}
}
