package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/ingest"
)

const (
	// ingestFor is how long each side streams per iteration; ingestSkip
	// is the start (open, probe, first reads) left out of the figure.
	ingestFor  = 7 * time.Second
	ingestSkip = 2 * time.Second
)

// BenchmarkIngestCPU measures what one camera costs the ingest in steady
// state: package ingest reads the hard clip looped in real time
// (Config{Realtime, Loop}, like a 25 fps camera) into a memory cache for
// 7 s; core_fraction = this process's CPU time (getrusage user+sys) from
// 2 s to 7 s / 5 s. Peer, run side by side: the ffmpeg CLI remuxing the
// same clip in real time to nowhere (`ffmpeg -re -stream_loop -1 -i clip
// -map 0:v -c copy -f null -`), its CPU read from /proc/PID/stat (10 ms
// ticks) over the same span of its own run, so neither side's start-up and
// probe is counted. Metrics: core_fraction, ffmpeg_core_fraction and
// x_vs_ffmpeg_remux = ours / ffmpeg's (sums over the iterations).
func BenchmarkIngestCPU(b *testing.B) {
	need(b, "ffmpeg", "ffprobe")
	for _, r := range hardRes {
		b.Run(r.name, func(b *testing.B) {
			path := hardClip(b, r.file)
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
// time after ingestSkip.
func ingestRun(b *testing.B, path string) (cpu, wall time.Duration) {
	mc := cache.NewMemory(cache.Retention{MaxAge: 30 * time.Second})
	defer mc.Close()
	in, err := ingest.New(mc, ingest.Config{Camera: "cam", Input: path, Realtime: true, Loop: true, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ingestFor)
	defer cancel()
	type sample struct {
		cpu  time.Duration
		wall time.Time
	}
	mark := make(chan sample, 1)
	t := time.AfterFunc(ingestSkip, func() { mark <- sample{cpuTime(b), time.Now()} })
	defer t.Stop()
	if err := in.Run(ctx); err != nil {
		b.Fatal(err)
	}
	m := <-mark // Run lasted ingestFor > ingestSkip
	cpu, wall = cpuTime(b)-m.cpu, time.Since(m.wall)
	// 25 fps for 7 s: about 175 packets (a few fewer while opening).
	if st := in.Stats(); st.Written < 150 {
		b.Fatalf("ingest wrote %d packets in %v, want about 175 (%+v)", st.Written, ingestFor, st)
	}
	return cpu, wall
}

// ffmpegRemux runs the ffmpeg peer for ingestFor and returns its CPU and
// wall time after ingestSkip.
func ffmpegRemux(b *testing.B, path string) (cpu, wall time.Duration) {
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i", path,
		"-map", "0:v", "-c", "copy", "-f", "null", "-")
	if err := cmd.Start(); err != nil {
		b.Errorf("ffmpeg remux: %v", err)
		return 0, 1
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	time.Sleep(ingestSkip)
	c0, w0 := procCPU(b, cmd.Process.Pid), time.Now()
	time.Sleep(ingestFor - ingestSkip)
	return procCPU(b, cmd.Process.Pid) - c0, time.Since(w0)
}

// procCPU is a running process's CPU time (utime + stime of
// /proc/PID/stat, in clock ticks of 10 ms).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
	ut, err1 := strconv.ParseInt(f[11], 10, 64)              // field 14
	st, err2 := strconv.ParseInt(f[12], 10, 64)              // field 15
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100 on Linux
}
