package sink_test

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/sink"
)

// packetImages makes packet-only images (replay.Window's packet
// mode) of pkts, numbered from their index + 1 as the ingest numbers them.
func packetImages(cam string, pkts []cache.Packet, idx ...[2]int) []flow.Image {
	var out []flow.Image
	for _, r := range idx {
		for i := r[0]; i <= r[1]; i++ {
			p := pkts[i]
			p.Number = int64(i + 1)
			out = append(out, &chrysalis.ChImage{Camera: cam, Time: p.ID.Time(), ID: p.ID, Keyframe: p.Keyframe, Packet: p})
		}
	}
	return out
}

// ptsJumps returns the file's packets' presentation times (sorted, as
// ffprobe lists them in decode order: no B-frames here), whether the first
// is a keyframe, and the largest step between consecutive ones.
func ptsJumps(t *testing.T, path string) (n int, key bool, maxStep float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	prev := -1.0
	for i, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		pts, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			t.Fatalf("ffprobe %s: %q", path, line)
		}
		if i == 0 {
			key = strings.HasPrefix(f[1], "K")
		} else {
			maxStep = max(maxStep, pts-prev)
		}
		prev = pts
		n++
	}
	return n, key, maxStep
}

// Packet-only images are remuxed in the order they come (no reorder heap),
// and a break in the packet numbering starts a new clip even when the time
// step is under Gap: no clip has a jump inside it. Each clip starts at a
// keyframe. clip720 has keyframes at 0 and 50.
func TestClipsPacketsOneClipPerWindow(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := loadClip(t, "clip720.mp4")
	pkts, _ := cachePackets(t, f)
	// Windows 0..30 and 50..99: 800 ms apart, under the 1 s default Gap.
	imgs := packetImages(f.cam, pkts, [2]int{0, 30}, [2]int{50, 99})
	c := sink.Clips(t.TempDir(), sink.ClipOptions{})
	if err := c.Run(context.Background(), feed(context.Background(), imgs)); err != nil {
		t.Fatal(err)
	}
	got := c.Clips()
	if len(got) != 2 {
		t.Fatalf("%d clips %+v, want 2", len(got), got)
	}
	for i, want := range []struct {
		first, last int
	}{{0, 30}, {50, 99}} {
		ci := got[i]
		if ci.First != pkts[want.first].ID || ci.Last != pkts[want.last].ID || ci.Frames != int64(want.last-want.first+1) ||
			ci.FirstNumber != int64(want.first+1) || ci.LastNumber != int64(want.last+1) {
			t.Fatalf("clip %d: %+v, want packets %d..%d", i, ci, want.first, want.last)
		}
		n, key, step := ptsJumps(t, ci.Path)
		if n != int(ci.Frames) || !key || step > 0.081 {
			t.Fatalf("clip %d: %d packets, starts on a keyframe %v, largest pts step %.3f s (want <= 2 frame intervals)",
				i, n, key, step)
		}
	}
	checkVideo(t, got[0].Path, "h264", 31, 1.24)
	checkVideo(t, got[1].Path, "h264", 50, 2.0)
}

// A window that does not start on a keyframe (its keyframe was trimmed)
// starts its clip at the next keyframe; the packets before are not written.
func TestClipsPacketsStartAtKeyframe(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := loadClip(t, "clip720.mp4")
	pkts, _ := cachePackets(t, f)
	c := sink.Clips(t.TempDir(), sink.ClipOptions{Gap: time.Second})
	if err := c.Run(context.Background(), feed(context.Background(), packetImages(f.cam, pkts, [2]int{40, 99}))); err != nil {
		t.Fatal(err)
	}
	if got := c.Clips(); len(got) != 1 || got[0].First != pkts[50].ID || got[0].Frames != 50 {
		t.Fatalf("clips %+v, want one of packets 50..99", got)
	}
}
