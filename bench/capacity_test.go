package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/ingest"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

// BenchmarkLiveCapacity counts live 720p25 cameras (the hard clip) on this
// machine's 2 cores:
//
//   - full, keyframes: N cameras, each a package-ingest of the clip looped
//     in real time (Config{Realtime, Loop}: a 25 fps camera; no RTMP, to
//     keep the harness cheap) into one loopback Redis from this process,
//     and one bench/liveconsumer process with a WaitLatest loop per camera
//     (200 ms of work per image; keyframes: CameraOptions.KeyframesOnly and
//     no work, see below) for CHRYSALIS_CAPACITY_FOR (default 30 s);
//     camera i starts i/N of a GOP after camera 0, as real cameras are not
//     in step. N grows (full: 1, 2, 3, 4, 6, 8, 10, 12; keyframes: 4, 8,
//     16, 24, 32, 48, 64) until the worst camera's p99 age (from its
//     packet's arrival in Redis, as LiveFrameAge) reaches 500 ms;
//     p99_ms_<N>cams is that worst p99 at each N. max_cameras is the
//     largest N up to which every step kept every camera under 100 ms;
//     cores is the consumer process's CPU at that N.
//   - ingest: N ingests (8, 16, 32) in this process for
//     CHRYSALIS_CAPACITY_FOR/3, with no consumer: ingest_cores_per_camera
//     (this process's CPU / wall / N at the largest N; Redis's CPU not
//     counted) and every camera must have written at least 90% of its 25
//     packets per second.
//
// The ingests of the full and keyframes runs share the 2 cores with the
// consumer, as they would in a one-box deployment.
func BenchmarkLiveCapacity(b *testing.B) {
	need(b, "ffmpeg", "ffprobe", "redis-server", "go")
	clip := hardClip(b, "hard720.mp4")
	dur := envDuration(b, "CHRYSALIS_CAPACITY_FOR", 30*time.Second)
	srv := testredis.Start(b, testredis.Options{})
	bin := buildConsumer(b, "")
	steps := map[string][]int{"full": {1, 2, 3, 4, 6, 8, 10, 12}, "keyframes": {4, 8, 16, 24, 32, 48, 64}}
	for _, mode := range []string{"full", "keyframes"} {
		b.Run(mode, func(b *testing.B) {
			best, bestCores := 0, 0.0
			for _, n := range steps[mode] {
				cams, arr, stop := ingestN(b, srv.URL(), fmt.Sprintf("%s%d-", mode, n), clip, n)
				args := []string{"-redis", srv.URL(), "-cameras", strings.Join(cams, ","), "-mode", "wait",
					"-for", dur.String(), "-work", slowConsumer.String()}
				if mode == "keyframes" {
					// No work per image: a keyframe that arrives while the
					// consumer works waits for it (up to the 200 ms of
					// work, in one keyframe of ten at a 2 s GOP), which is
					// the consumer's time, not the reader's. With no
					// work, the age is the reader's hand-out latency.
					args = append(args, "-keyframes", "-work", "0s")
				}
				out := consume(b, bin, args...)
				stop()
				worst, worstMax, errs, stalled := 0.0, 0.0, 0, 0
				for _, c := range out.Cameras {
					if len(c.Errors) > 0 {
						errs += len(c.Errors)
						b.Logf("%s: WaitLatest failed %d times, first: %s", c.Camera, len(c.Errors), c.Errors[0])
					}
					if len(c.Ages) < 2 {
						b.Fatalf("%s: %d images", c.Camera, len(c.Ages))
					}
					_, ages, _, st := arr.ages(b, c.Camera, c.IDs[1:], c.AtUS[1:])
					stalled += st
					if len(ages) == 0 {
						continue
					}
					worst = max(worst, percentile(ages, 99))
					worstMax = max(worstMax, slices.Max(ages))
				}
				cores := out.CPUSeconds / out.Seconds
				b.Logf("%s: %d cameras: worst camera p99 %.1f ms (max %.1f; %d images after upstream stalls left out), %d WaitLatest errors, consumer %.2f cores, load average %s, CPU pressure %s",
					mode, n, worst, worstMax, stalled, errs, cores, loadavg(), cpuPressure())
				b.ReportMetric(worst, fmt.Sprintf("p99_ms_%dcams", n))
				if worst < 100 && errs == 0 && best == n-stepBefore(steps[mode], n) {
					best, bestCores = n, cores // every step so far passed
				}
				if worst >= 500 { // saturated: more cameras only take longer
					break
				}
			}
			for b.Loop() { // the steps above are the measurement
			}
			b.ReportMetric(float64(best), "max_cameras")
			b.ReportMetric(bestCores, "cores")
		})
	}
	b.Run("ingest", func(b *testing.B) {
		var perCam float64
		for _, n := range []int{8, 16, 32} {
			c0, w0 := cpuTime(b), time.Now()
			_, _, stop := ingestN(b, srv.URL(), fmt.Sprintf("ingest%d-", n), clip, n)
			time.Sleep(dur / 3)
			written := stop()
			wall := time.Since(w0)
			perCam = (cpuTime(b) - c0).Seconds() / wall.Seconds() / float64(n)
			slow := 0
			for _, w := range written {
				if float64(w) < 0.9*25*(dur/3).Seconds() {
					slow++
				}
			}
			b.Logf("ingest: %d cameras: %.4f cores per camera, %d cameras below 90%% of 25 packets/s, load average %s",
				n, perCam, slow, loadavg())
			if slow > 0 {
				b.Errorf("%d of %d ingests fell behind", slow, n)
			}
		}
		for b.Loop() {
		}
		b.ReportMetric(perCam, "ingest_cores_per_camera")
		b.ReportMetric(1/perCam, "ingest_cameras_per_core")
	})
}

// capacityGOP is the hard clip's keyframe interval (50 frames at 25 fps).
const capacityGOP = 2 * time.Second

// ingestN starts n ingests of clip (looped in real time) into Redis at url
// as cameras prefix0..prefix<n-1>, recording each packet's arrival, and
// returns once each has 2 s of packets in. stop ends them and returns the
// packets each wrote.
func ingestN(b *testing.B, url, prefix, clip string, n int) (cams []string, arr *arrivals, stop func() []int64) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	wc, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: url},
		rediscache.Options{Logger: quiet, Retention: cache.Retention{MaxAge: 8 * time.Second}})
	if err != nil {
		b.Fatal(err)
	}
	arr = newArrivals(wc)
	ins := make([]*ingest.Ingest, n)
	var wg sync.WaitGroup
	for i := range n {
		cam := fmt.Sprintf("%s%d", prefix, i)
		cams = append(cams, cam)
		in, err := ingest.New(arr, ingest.Config{Camera: cam, Input: clip, Realtime: true, Loop: true, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		ins[i] = in
		wg.Go(func() {
			// Cameras are not in step: camera i starts i/n of a GOP
			// (the hard clip's 50 frames, 2 s) after camera 0, so their
			// keyframes and frames arrive spread out, not all at once.
			t := time.NewTimer(time.Duration(i) * capacityGOP / time.Duration(n))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if err := in.Run(ctx); err != nil {
				b.Errorf("ingest %s: %v", cam, err)
			}
		})
	}
	var once sync.Once
	stop = func() []int64 {
		once.Do(func() {
			cancel()
			wg.Wait()
			wc.Close()
		})
		w := make([]int64, n)
		for i, in := range ins {
			w[i] = in.Stats().Written
		}
		return w
	}
	// A failed step must not leave ingests running into the next
	// benchmarks (they would retry a stopped Redis and use CPU).
	b.Cleanup(func() { stop() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ready := 0
		for _, in := range ins {
			if in.Stats().Written >= 50 {
				ready++
			}
		}
		if ready == n {
			break
		}
		if time.Now().After(deadline) {
			stop()
			b.Fatalf("%d of %d ingests wrote 2 s of packets in 30 s", ready, n)
		}
	}
	return cams, arr, stop
}

// stepBefore is n minus the step before n in steps (n itself for the
// first step), so that best == n - stepBefore(steps, n) holds while every
// earlier step passed.
func stepBefore(steps []int, n int) int {
	for i, s := range steps {
		if s == n && i > 0 {
			return n - steps[i-1]
		}
	}
	return n
}

// cpuPressure is the "some avg10" of /proc/pressure/cpu: the share of the
// last 10 s in which some runnable task waited for a CPU.
func cpuPressure() string {
	raw, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return "?"
	}
	for _, f := range strings.Fields(string(raw)) {
		if v, ok := strings.CutPrefix(f, "avg10="); ok {
			return v + "%"
		}
	}
	return "?"
}
