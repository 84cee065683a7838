package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

const (
	// liveFor is how long each side consumes the live stream per iteration.
	liveFor = 5 * time.Second
	// slowConsumer is the per-frame work of the slow consumer (5 fps
	// against a 25 fps camera).
	slowConsumer  = 200 * time.Millisecond
	frameInterval = 40 * time.Millisecond
)

// BenchmarkLiveFrameAge measures how fresh the images of a slow consumer
// are on a 25 fps live camera. The consumer takes 200 ms per image and
// runs for 5 s per iteration.
//
// Ours: a goroutine appends the clip's packets (looped, PTS/DTS shifted)
// into Redis every 40 ms with wall-clock timestamps, as an ingest does; the
// consumer calls Camera.WaitLatest. Age = now - image time when WaitLatest
// returns; p50/p99 over every image of every iteration.
//
// Peer: gocv.VideoCapture (OpenCV's FFmpeg backend) reading the same clip
// served live over RTMP by `ffmpeg -re -stream_loop -1 ... -listen 1`, with
// the same 200 ms per image. It reads the stream in order, so it falls
// behind: lag = (time since its first image) - (images read - 1) x 40 ms,
// taken at its last image. Its connection and probing time is not counted,
// which favours the peer.
//
// Both run side by side in each iteration (they use a fraction of a core
// each). Metrics: age_p50_ms, age_p99_ms, gocv_lag_ms (median over
// iterations), gocv_lag_growth_ms/s, and x_vs_gocv = gocv_lag / our p99
// age (how many times fresher our images are).
func BenchmarkLiveFrameAge(b *testing.B) {
	need(b, "ffmpeg", "ffprobe", "redis-server")
	srv := testredis.Start(b, testredis.Options{})
	// OpenCV's FFmpeg backend probes a stream for 5 s by default before the
	// first image; a short probe only shortens the benchmark (the peer's
	// lag is counted from its first image). Set before any concurrent C
	// code runs: OpenCV reads it with getenv at each open.
	b.Setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "analyzeduration;500000|probesize;65536")
	for _, r := range resolutions {
		b.Run(r.name, func(b *testing.B) {
			clip := loadClip(b, r.file)
			var ages, lags, growth []float64
			iter := 0
			for b.Loop() {
				iter++
				var wg sync.WaitGroup
				var lag, elapsed time.Duration
				wg.Go(func() { lag, elapsed = gocvLag(b, testclip.Path(r.file)) })
				ages = append(ages, liveAges(b, srv.URL(), fmt.Sprintf("live-%s-%d", r.name, iter), clip)...)
				wg.Wait()
				lags = append(lags, float64(lag.Milliseconds()))
				growth = append(growth, float64(lag.Milliseconds())/elapsed.Seconds())
			}
			p99 := percentile(ages, 99)
			b.ReportMetric(percentile(ages, 50), "age_p50_ms")
			b.ReportMetric(p99, "age_p99_ms")
			b.ReportMetric(median(lags), "gocv_lag_ms")
			b.ReportMetric(median(growth), "gocv_lag_growth_ms/s")
			b.ReportMetric(median(lags)/p99, "x_vs_gocv")
		})
	}
}

// liveAges feeds camera cam live into Redis and returns the ages in ms of
// the images a slow WaitLatest consumer got during liveFor.
func liveAges(b *testing.B, url, cam string, clip *testclip.Clip) []float64 {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wc, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: url},
		rediscache.Options{Logger: quiet, Retention: cache.Retention{MaxAge: 30 * time.Second}})
	if err != nil {
		b.Fatal(err)
	}
	defer wc.Close()
	first := make(chan struct{})
	feedErr := make(chan error, 1)
	go func() { feedErr <- feed(ctx, wc, cam, clip, first) }()
	select {
	case <-first:
	case err := <-feedErr:
		b.Fatal(err)
	}

	rc, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: url}, rediscache.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	c := chrysalis.New(rc, chrysalis.Options{Logger: quiet}).Camera(cam, chrysalis.CameraOptions{Logger: quiet})
	defer c.Close()

	var ages []float64
	for end := time.Now().Add(liveFor); time.Now().Before(end); {
		img, err := c.WaitLatest(ctx)
		if err != nil {
			b.Fatal(err)
		}
		ages = append(ages, float64(time.Since(img.Time).Microseconds())/1000)
		img.Release()
		time.Sleep(slowConsumer)
	}
	cancel()
	if err := ignoreCancel(<-feedErr); err != nil {
		b.Fatal(err)
	}
	return ages
}

// feed appends the clip's packets to the cache every 40 ms, stamped with
// the wall clock, looping with shifted PTS/DTS until ctx ends. It closes
// first after the first packet.
func feed(ctx context.Context, c cache.Cache, cam string, clip *testclip.Clip, first chan<- struct{}) error {
	if err := c.SetCodec(ctx, cam, clip.CacheCodec()); err != nil {
		return err
	}
	span := ptsSpan(clip)
	start := time.Now()
	for i := 0; ; i++ {
		p := clip.Packets[i%len(clip.Packets)]
		shift := int64(i/len(clip.Packets)) * span
		var extra []byte
		if p.Key {
			extra = clip.Extradata
		}
		_, err := c.Append(ctx, cam, &cache.Packet{Timestamp: time.Now().UnixMilli(), Keyframe: p.Key, Data: p.Data,
			PTS: p.PTS + shift, DTS: p.DTS + shift, TimeBase: clip.TimeBase, Width: clip.Width, Height: clip.Height,
			CodecName: clip.Codec, PixFmt: clip.PixFmt, Extradata: extra, Number: int64(i)})
		if err != nil {
			return err
		}
		if i == 0 {
			close(first)
		}
		t := time.NewTimer(time.Until(start.Add(time.Duration(i+1) * frameInterval)))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// gocvLag serves path live over RTMP with the ffmpeg CLI and reads it with
// gocv.VideoCapture at 200 ms per image for liveFor after the first image.
// It returns the lag behind the live stream at the last image and the time
// it was measured over.
func gocvLag(b *testing.B, path string) (lag, elapsed time.Duration) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Error(err)
		return
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	url := fmt.Sprintf("rtmp://127.0.0.1:%d/live/x", port)
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i", path,
		"-map", "0:v", "-c", "copy", "-f", "flv", "-listen", "1", url)
	if err := cmd.Start(); err != nil {
		b.Error(err)
		return
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()

	// No TCP probe: the listener serves exactly one client. Wait for the
	// listening socket, then open (retrying, should it not be ffmpeg's yet).
	var vc *gocv.VideoCapture
	began := time.Now()
	waitListen(port, 10*time.Second)
	attempts := 0
	for deadline := began.Add(10 * time.Second); ; {
		attempts++
		vc, err = gocv.VideoCaptureFileWithAPI(url, gocv.VideoCaptureFFmpeg)
		if err == nil && vc.IsOpened() {
			break
		}
		vc.Close()
		if time.Now().After(deadline) {
			b.Errorf("gocv could not open %s: %v", url, err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer vc.Close()
	b.Logf("gocv opened the RTMP stream in %v (%d attempts)", time.Since(began).Round(time.Millisecond), attempts)
	mat := gocv.NewMat()
	defer mat.Close()

	var firstAt time.Time
	for n := 1; ; n++ {
		if !vc.Read(&mat) || mat.Empty() {
			b.Errorf("gocv read failed after %d images", n-1)
			return
		}
		now := time.Now()
		if n == 1 {
			firstAt = now
		}
		elapsed = now.Sub(firstAt)
		lag = elapsed - time.Duration(n-1)*frameInterval
		if elapsed >= liveFor {
			return lag, elapsed
		}
		time.Sleep(slowConsumer)
	}
}

// waitListen waits until a socket listens on 127.0.0.1:port, looking at
// /proc/net/tcp so that no connection is made (where there is no
// /proc, it waits half a second).
func waitListen(port int, timeout time.Duration) {
	want := fmt.Sprintf("0100007F:%04X", port)
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		raw, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			time.Sleep(500 * time.Millisecond)
			return
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if f := strings.Fields(line); len(f) > 3 && f[1] == want && f[3] == "0A" { // TCP_LISTEN
				return
			}
		}
	}
}
