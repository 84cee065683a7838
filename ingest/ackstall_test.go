package ingest_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/ingest"
	"github.com/chryscloud/chrysalis-go/internal/testx"
)

// arrivalCache records when each Append returned and the bytes written.
type arrivalCache struct {
	cache.Cache
	mu    sync.Mutex
	at    []time.Time
	bytes int
}

func (a *arrivalCache) Append(ctx context.Context, cam string, p *cache.Packet) (cache.ID, error) {
	id, err := a.Cache.Append(ctx, cam, p)
	a.mu.Lock()
	a.at = append(a.at, time.Now())
	a.bytes += len(p.Data)
	a.mu.Unlock()
	return id, err
}

// TestRTMPPushHasNoACKStalls: a 25 fps push of ~23 Mbit/s (noise, so every
// frame is big) from the ffmpeg CLI through the listening Ingest. FFmpeg's
// RTMP server sends the pusher a "bytes read" report about every MB; with
// Linux's delayed ACKs on the gate's side and Nagle's algorithm on the
// pusher's, each report held the next packet back by ~40 ms: a frame
// arrived a frame late once per MB (1 packet in 60 of a 5 Mbit/s 1080p
// push). The gate sets TCP_QUICKACK before every read of the pusher's
// connection. With it, no gap between two packets' arrivals exceeds
// lateGap but scheduling noise; without it, most reports make one (seen
// under -race: 10 and 12 of ~16 without the fix, 0, 1 and 0 with it).
func TestRTMPPushHasNoACKStalls(t *testing.T) {
	requireFFmpeg(t)
	if runtime.GOOS != "linux" {
		t.Skip("TCP_QUICKACK is Linux only")
	}
	const (
		lateGap = 62 * time.Millisecond // 40 ms frame interval + ffmpeg -re's 10 ms pacing steps (gaps up to ~50 ms) + margin
		report  = 1 << 20               // bytes between FFmpeg's "bytes read" reports (its 1 MB window, ~1.06e6 seen)
	)
	path := filepath.Join(t.TempDir(), "noisy.mp4")
	gen := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25,noise=alls=15:allf=t",
		"-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "22", "-g", "25", "-pix_fmt", "yuv420p", path)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("making the clip: %v: %s", err, out)
	}
	ac := &arrivalCache{Cache: cache.NewMemory(cache.Retention{MaxAge: time.Minute})}
	url := fmt.Sprintf("rtmp://127.0.0.1:%d/live/cam", testx.FreePort(t))
	in, err := ingest.New(ac, ingest.Config{Camera: "cam", Input: url, Listen: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, in)
	push(t, context.Background(), path, url)
	if err, _ := r.stop(t); err != nil {
		t.Fatal(err)
	}
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if len(ac.at) < 100 {
		t.Fatalf("%d packets arrived, want the clip's 150", len(ac.at))
	}
	var late []string
	var longest time.Duration
	// The first second is the probe's backlog, handed out at once.
	first := ac.at[0]
	for i := 1; i < len(ac.at); i++ {
		if ac.at[i].Sub(first) < time.Second {
			continue
		}
		g := ac.at[i].Sub(ac.at[i-1])
		longest = max(longest, g)
		if g > lateGap {
			late = append(late, fmt.Sprintf("#%d after %v", i, g.Round(time.Millisecond)))
		}
	}
	reports := ac.bytes / report
	t.Logf("%d packets, %.1f MB (~%d reports): %d gaps over %v %v; longest %v", len(ac.at), float64(ac.bytes)/1e6, reports, len(late), lateGap, late, longest.Round(time.Millisecond))
	if reports < 8 {
		t.Fatalf("only %d MB pushed: too few reports to tell", reports)
	}
	// A stall per report would be ~reports gaps; allow a few for a busy
	// machine's scheduling.
	if len(late) > max(2, reports/4) {
		t.Fatalf("%d packets arrived more than %v after the one before (~%d \"bytes read\" reports): the push stalls on delayed ACKs",
			len(late), lateGap, reports)
	}
}
