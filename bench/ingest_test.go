package bench

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/ingest"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
)

// ingestFor is how long each side streams per iteration.
const ingestFor = 4 * time.Second

// BenchmarkIngestCPU measures what one camera costs the ingest: package
// ingest reads the clip looped in real time (Config{Realtime, Loop}, like a
// 25 fps camera) into a memory cache for 4 s; core_fraction = process CPU
// time (getrusage user+sys) / wall time. Peer, run side by side: the
// ffmpeg CLI remuxing the same clip in real time to nowhere (`ffmpeg -re
// -stream_loop -1 -i clip -t 4 -map 0:v -c copy -f null -`), its CPU from
// the child's rusage over its own wall time. Metrics: core_fraction,
// ffmpeg_core_fraction and x_vs_ffmpeg_remux = ours / ffmpeg's.
func BenchmarkIngestCPU(b *testing.B) {
	need(b, "ffmpeg", "ffprobe")
	for _, r := range resolutions {
		b.Run(r.name, func(b *testing.B) {
			path := testclip.Path(r.file)
			var oursCPU, oursWall, peerCPU, peerWall time.Duration
			for b.Loop() {
				var wg sync.WaitGroup
				var cpu, wall time.Duration
				wg.Go(func() { cpu, wall = ffmpegRemux(b, path) })
				c, w := ingestRun(b, path)
				wg.Wait()
				oursCPU, oursWall = oursCPU+c, oursWall+w
				peerCPU, peerWall = peerCPU+cpu, peerWall+wall
			}
			ours := oursCPU.Seconds() / oursWall.Seconds()
			peer := peerCPU.Seconds() / peerWall.Seconds()
			b.ReportMetric(ours, "core_fraction")
			b.ReportMetric(peer, "ffmpeg_core_fraction")
			b.ReportMetric(ours/peer, "x_vs_ffmpeg_remux")
			check(b, "IngestCPU/"+r.name+" cores per camera", ours, "<=", 0.05, "cores")
		})
	}
}

// ingestRun runs the ingest for ingestFor and returns its CPU and wall
// time.
func ingestRun(b *testing.B, path string) (cpu, wall time.Duration) {
	mc := cache.NewMemory(cache.Retention{MaxAge: 30 * time.Second})
	defer mc.Close()
	in, err := ingest.New(mc, ingest.Config{Camera: "cam", Input: path, Realtime: true, Loop: true, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ingestFor)
	defer cancel()
	c0, w0 := cpuTime(b), time.Now()
	if err := in.Run(ctx); err != nil {
		b.Fatal(err)
	}
	cpu, wall = cpuTime(b)-c0, time.Since(w0)
	// 25 fps for 4 s: about 100 packets (a few fewer while opening).
	if st := in.Stats(); st.Written < 80 {
		b.Fatalf("ingest wrote %d packets in %v, want about 100 (%+v)", st.Written, wall, st)
	}
	return cpu, wall
}

// ffmpegRemux runs the ffmpeg peer and returns its CPU and wall time.
func ffmpegRemux(b *testing.B, path string) (cpu, wall time.Duration) {
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i", path,
		"-t", fmt.Sprint(ingestFor.Seconds()), "-map", "0:v", "-c", "copy", "-f", "null", "-")
	w0 := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Errorf("ffmpeg remux: %v: %s", err, out)
		return 0, 1
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), time.Since(w0)
}
