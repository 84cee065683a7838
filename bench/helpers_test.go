// Package bench holds the performance benchmarks of the targets in
// README.md ("Targets"). Each one measures Chrysalis Go and a peer on the
// same content in the same run and reports the ratio, so a noisy, shared
// machine moves both sides together; each target is checked and printed
// PASS or FAIL at the end (targets_test.go). There are no tests here: `go
// test ./bench/` compiles the package and runs nothing; `make bench` (or
// the command in README.md) runs the benchmarks.
package bench

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/chryscloud/chrysalis-go/internal/testclip"
)

func TestMain(m *testing.M) {
	// FFmpeg's own log (also OpenCV's: same libraries, one process) would
	// interleave with the benchmark lines, e.g. "connection refused" while
	// the gocv peer waits for its RTMP server.
	astiav.SetLogLevel(astiav.LogLevelFatal)
	code := m.Run()
	printVerdicts()
	os.Exit(code)
}

const (
	// t0 is the synthetic cache time of a replayed clip's first packet.
	t0 = int64(1_750_000_000_000)
	// stepMS is the packet spacing of the 25 fps clips.
	stepMS = int64(40)
)

// res is one of the clips the benchmarks run on.
type res struct {
	name string // sub-benchmark name, also the camera id
	file string // under testdata/
}

var resolutions = []res{{"720p", "clip720.mp4"}, {"1080p", "clip1080.mp4"}}

// touched accumulates a byte of every image the single-goroutine consumers
// look at, so that reading it is not optimised away.
var touched int64

// quiet is the logger handed to the code under measurement.
var quiet = slog.New(slog.DiscardHandler)

// need skips b when one of the binaries is missing. Unlike the test
// helpers it skips under CI=true too: benchmarks are never a CI gate.
func need(b *testing.B, bins ...string) {
	b.Helper()
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err != nil {
			b.Skipf("%s not installed (run `make deps`): %v", bin, err)
		}
	}
}

var (
	clipsMu sync.Mutex
	clips   = map[string]*testclip.Clip{}
)

// loadClip returns the clip's packets (ffprobe runs once per clip and
// process).
func loadClip(b *testing.B, file string) *testclip.Clip {
	b.Helper()
	need(b, "ffmpeg", "ffprobe")
	clipsMu.Lock()
	defer clipsMu.Unlock()
	if c, ok := clips[file]; ok {
		return c
	}
	c := testclip.Load(b, file)
	if len(c.Packets) < 2 {
		b.Fatalf("%s: %d packets", file, len(c.Packets))
	}
	clips[file] = c
	return c
}

// ptsSpan is the clip's duration in its time base: the distance between
// the first packet of one loop and the first packet of the next.
func ptsSpan(c *testclip.Clip) int64 {
	n := len(c.Packets)
	frame := c.Packets[1].DTS - c.Packets[0].DTS
	return c.Packets[n-1].DTS - c.Packets[0].DTS + frame
}

// loopClip returns c played k times in a row, with PTS/DTS shifted so they
// keep increasing. Packet data is shared (read-only).
func loopClip(c *testclip.Clip, k int) *testclip.Clip {
	out := *c
	out.Packets = make([]testclip.Packet, 0, k*len(c.Packets))
	span := ptsSpan(c)
	for i := range k {
		for _, p := range c.Packets {
			p.PTS += int64(i) * span
			p.DTS += int64(i) * span
			out.Packets = append(out.Packets, p)
		}
	}
	return &out
}

// cpuTime is the CPU time (user + system) of this process so far, all
// threads included (Go, FFmpeg's decoder threads, cgo).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// percentile returns the p-th percentile (0..100, nearest rank) of xs.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// median of xs.
func median(xs []float64) float64 { return percentile(xs, 50) }

// ignoreCancel drops the error a deliberately cancelled context produces.
func ignoreCancel(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}
