package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/internal/testclip"
)

// soakEnv names the soak length; the target (bench/README.md) is a 10-minute run
// (CHRYSALIS_SOAK=10m, what `make soak` runs). Unset, the soak is skipped:
// `make bench` stays short.
const soakEnv = "CHRYSALIS_SOAK"

const (
	// rssEvery is the sampling period; rssWarm is when the baseline is
	// taken (pools, the cache's retention window and the codec state have
	// filled by then).
	rssEvery = 5 * time.Second
	rssWarm  = time.Minute
)

// BenchmarkLiveRSS checks "RSS bounded for a long live run" on the whole
// product: two `chrysalis demo` processes on the in-process cache, one on
// the bundled 720p clip, one with --input testdata/clip1080.mp4, each
// ingesting its clip looped in real time into a 1-minute cache and running the
// demo graph (throttle, JPEG snapshots, motion → window replay → MP4 clips,
// the watch page). The peer, in the same run, is the ffmpeg CLI decoding
// the same 1080p clip in real time (`-re -stream_loop -1 ... -f null`), a
// process whose memory is known to stay flat.
//
// Every process's VmRSS is read from /proc every 5 s. Per process:
// rss_1min_MB (at 1 min), rss_half_MB (at half the soak), rss_end_MB (the
// last sample), rss_max_MB, end_vs_1min = rss_end / rss_1min and
// end_vs_half = rss_end / rss_half (1.00 is flat; memory that grew with
// time would give about 2 over the second half). x_vs_ffmpeg divides our
// 1080p end_vs_half by the peer's. The demos run with GODEBUG=gctrace=1:
// go_live_first_MB and go_live_last_MB are the Go heap left live by the
// first GC after 1 min and by the last GC (the runtime forces one every
// 2 min), the part of RSS that a per-frame leak in Go would grow.
//
// The length is CHRYSALIS_SOAK (at least 2m; 10m for the target in bench/README.md);
// without it the benchmark skips. Run it alone, one iteration: `make soak`.
func BenchmarkLiveRSS(b *testing.B) {
	s := os.Getenv(soakEnv)
	if s == "" {
		b.Skipf("set %s=10m to run the soak (make soak)", soakEnv)
	}
	soak, err := time.ParseDuration(s)
	if err != nil || soak < 2*rssWarm {
		b.Fatalf("%s=%q: want a duration of at least %v", soakEnv, s, 2*rssWarm)
	}
	need(b, "ffmpeg", "ffprobe", "go")
	dir := b.TempDir()
	bin := filepath.Join(dir, "chrysalis")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/chrysalis").CombinedOutput(); err != nil {
		b.Fatalf("building chrysalis: %v\n%s", err, out)
	}
	clip1080 := testclip.Path("clip1080.mp4")
	b.Setenv("GODEBUG", "gctrace=1")
	for b.Loop() {
		procs := []*rssProc{
			startRSS(b, "demo720", bin, "demo", "--duration", soak.String(), "--http", "127.0.0.1:0",
				"--out", filepath.Join(dir, "d720")),
			startRSS(b, "demo1080", bin, "demo", "--duration", soak.String(), "--http", "127.0.0.1:0",
				"--out", filepath.Join(dir, "d1080"), "--input", clip1080, "--camera", "cam1080"),
			startRSS(b, "ffmpeg1080", "ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1",
				"-i", clip1080, "-f", "null", "-"),
		}
		began := time.Now()
		tick := time.NewTicker(rssEvery)
		for now := range tick.C {
			for _, p := range procs {
				p.sample(b, now.Sub(began))
			}
			if now.Sub(began) >= soak-rssEvery {
				break
			}
		}
		tick.Stop()
		for _, p := range procs {
			p.stop(b)
		}
		for _, p := range procs {
			b.ReportMetric(p.at1min(), p.name+"_rss_1min_MB")
			b.ReportMetric(p.half(), p.name+"_rss_half_MB")
			b.ReportMetric(p.last(), p.name+"_rss_end_MB")
			b.ReportMetric(slices.Max(p.rss), p.name+"_rss_max_MB")
			b.ReportMetric(p.last()/p.at1min(), p.name+"_end_vs_1min")
			b.ReportMetric(p.last()/p.half(), p.name+"_end_vs_half")
			b.Logf("%s RSS MB every %v: %v", p.name, rssEvery, p.rss)
			if p.peer {
				continue
			}
			live := goLiveAfterGC(p.out.String())
			b.Logf("%s Go heap live after each GC (s: MB): %v", p.name, live)
			var first, last float64
			for _, l := range live {
				if l.at >= rssWarm && first == 0 {
					first = l.mb
				}
				last = l.mb
			}
			if first == 0 { // no GC after the warm-up: nothing to compare
				b.Logf("%s: no GC after %v; go_live metrics not reported", p.name, rssWarm)
				continue
			}
			b.ReportMetric(first, p.name+"_go_live_first_MB")
			b.ReportMetric(last, p.name+"_go_live_last_MB")
		}
		ours, peer := procs[1], procs[2]
		b.ReportMetric((ours.last()/ours.half())/(peer.last()/peer.half()), "x_vs_ffmpeg")
	}
}

// rssProc is one process under RSS sampling.
type rssProc struct {
	name string
	peer bool // the ffmpeg peer: no Go heap trace, exits 255 on SIGINT
	cmd  *exec.Cmd
	out  bytes.Buffer
	rss  []float64 // MB, sample i taken (i+1) x rssEvery after the start
}

func (p *rssProc) at1min() float64 { return p.rss[int(rssWarm/rssEvery)-1] }
func (p *rssProc) half() float64   { return p.rss[len(p.rss)/2] }
func (p *rssProc) last() float64   { return p.rss[len(p.rss)-1] }

func startRSS(b *testing.B, name, bin string, args ...string) *rssProc {
	p := &rssProc{name: name, peer: bin == "ffmpeg", cmd: exec.Command(bin, args...)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	b.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	return p
}

// sample reads the process's VmRSS; it fails the benchmark when the
// process has gone.
func (p *rssProc) sample(b *testing.B, at time.Duration) {
	mb, err := vmRSS(p.cmd.Process.Pid)
	if err != nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait() // the output is complete after Wait
		b.Fatalf("%s after %v: %v\n%s", p.name, at.Round(time.Second), err, p.out.String())
	}
	p.rss = append(p.rss, math.Round(mb*10)/10)
}

// gcLive is the Go heap left live by one GC.
type gcLive struct {
	at time.Duration
	mb float64
}

func (l gcLive) String() string { return fmt.Sprintf("%.0f: %.0f", l.at.Seconds(), l.mb) }

// gcLine matches a GODEBUG=gctrace=1 line: "gc N @Ts ... A->B->C MB".
var gcLine = regexp.MustCompile(`(?m)^gc \d+ @([0-9.]+)s .* \d+->\d+->(\d+) MB`)

// goLiveAfterGC extracts each GC's time and live heap from a gctrace log.
func goLiveAfterGC(log string) []gcLive {
	var out []gcLive
	for _, m := range gcLine.FindAllStringSubmatch(log, -1) {
		at, err1 := strconv.ParseFloat(m[1], 64)
		mb, err2 := strconv.ParseFloat(m[2], 64)
		if err1 == nil && err2 == nil {
			out = append(out, gcLive{time.Duration(at * float64(time.Second)), mb})
		}
	}
	return out
}

// stop interrupts the process (the demo stops by itself at --duration,
// usually a moment later) and waits for it.
func (p *rssProc) stop(b *testing.B) {
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil && !p.peer {
			b.Errorf("%s: %v\n%s", p.name, err, p.out.String())
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		b.Errorf("%s did not stop within 30 s of SIGINT", p.name)
	}
}

// vmRSS is a process's resident set size in MB, from /proc/PID/status.
func vmRSS(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("parsing VmRSS %q: %w", rest, err)
			}
			return kb / 1024, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status (a zombie?)", pid)
}
