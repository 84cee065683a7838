package chrysalis_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

// The iterator yields exactly the frames of [start, end], also when start
// falls mid-GOP, and stops early cleanly.
func TestPastWindow(t *testing.T) {
	cl, _ := memClient(t, "clip720.mp4")
	cam := cl.Camera("clip720.mp4", chrysalis.CameraOptions{})
	defer cam.Close()
	ref := testclip.Reference(t, "clip720.mp4", "bgr24", 0, 0)
	for _, tc := range []struct{ from, to int }{{10, 30}, {50, 50}, {49, 60}, {0, 0}, {77, 99}} {
		got := collect(t, cam, ms(tc.from), ms(tc.to))
		if len(got) != tc.to-tc.from+1 {
			t.Fatalf("[%d,%d]: %d frames, want %d", tc.from, tc.to, len(got), tc.to-tc.from+1)
		}
		if !got[0].Time.Equal(ms(tc.from)) || !got[len(got)-1].Time.Equal(ms(tc.to)) {
			t.Fatalf("[%d,%d]: first %v last %v", tc.from, tc.to, got[0].Time, got[len(got)-1].Time)
		}
		checkExact(t, got, ref, tc.from)
	}
	// Early stop: break after 3 frames, then the camera keeps working.
	n := 0
	for img, err := range cam.Past(context.Background(), ms(0), ms(99)) {
		if err != nil {
			t.Fatal(err)
		}
		img.Release()
		if n++; n == 3 {
			break
		}
	}
	if got := collect(t, cam, ms(95), ms(99)); len(got) != 5 {
		t.Fatalf("after early stop: %d frames, want 5", len(got))
	}
}

func TestScreenshot(t *testing.T) {
	cl, _ := memClient(t, "clip720.mp4")
	cam := cl.Camera("clip720.mp4", chrysalis.CameraOptions{})
	defer cam.Close()
	ref := testclip.Reference(t, "clip720.mp4", "bgr24", 0, 0)
	for _, tc := range []struct{ at, want int }{{0, 0}, {49, 0}, {50, 50}, {70, 50}, {500, 50}} {
		img, err := cam.Screenshot(context.Background(), ms(tc.at))
		if err != nil {
			t.Fatalf("screenshot at %d: %v", tc.at, err)
		}
		if !img.Keyframe || !img.Time.Equal(ms(tc.want)) {
			t.Fatalf("screenshot at %d: keyframe %v time %v, want frame %d", tc.at, img.Keyframe, img.Time, tc.want)
		}
		if !bytes.Equal(img.Data, ref[tc.want]) {
			t.Fatalf("screenshot at %d differs from ffmpeg's frame %d: PSNR %.1f dB", tc.at, tc.want, testclip.PSNR(img.Data, ref[tc.want]))
		}
	}
	_, err := cam.Screenshot(context.Background(), ms(-1))
	if !errors.Is(err, chrysalis.ErrNotFound) {
		t.Fatalf("screenshot before the first frame: %v, want ErrNotFound", err)
	}
}

func TestLatestStatic(t *testing.T) {
	cl, _ := memClient(t, "clip720.mp4")
	cam := cl.Camera("clip720.mp4", chrysalis.CameraOptions{})
	defer cam.Close()
	img, err := cam.Latest(context.Background())
	if err != nil || img == nil {
		t.Fatalf("latest: %v %v", img, err)
	}
	ref := testclip.Reference(t, "clip720.mp4", "bgr24", 0, 0)
	if !img.Time.Equal(ms(99)) || !bytes.Equal(img.Data, ref[99]) {
		t.Fatalf("latest is %v, want frame 99", img.Time)
	}
	// Only the newest GOP was decoded: packets 50..99.
	if st := cam.Stats(); st.Decoded != 50 || st.Converted != 1 {
		t.Fatalf("stats %+v: want 50 decoded (newest GOP only), 1 converted", st)
	}
	again, err := cam.Latest(context.Background())
	if again != nil || err != nil {
		t.Fatalf("second latest with nothing new: %v %v, want nil, nil", again, err)
	}
	// A second handle has its own position.
	other := cl.Camera("clip720.mp4", chrysalis.CameraOptions{})
	defer other.Close()
	if img, err := other.Latest(context.Background()); err != nil || img == nil {
		t.Fatalf("second handle: %v %v", img, err)
	}
}

// Latest under a consumer that sleeps 200 ms per frame on a 25 fps live
// feed: frames are the newest packet in the cache when WaitLatest was
// called (p50), and frame age stays within 2x the README's figures
// for this measure (p50 26 ms, p99 47 ms at 720p, measured on a quiet
// machine by bench LiveFrameAge).
func TestLatestSlowConsumer(t *testing.T) {
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{MaxAge: 10 * time.Second})
	defer mc.Close()
	cl := chrysalis.New(mc, chrysalis.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The camera: the clip's packets at 25 fps, wall-clock stamped.
	live := clip.Live(t, mc, "live", 0)
	cam := cl.Camera("live", chrysalis.CameraOptions{})
	defer cam.Close()
	share := cpuShare(t, ctx)
	var ages, lags []time.Duration
	var last time.Time
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		newest, err := mc.RevRange(ctx, "live", cache.MaxID, cache.MinID, 1)
		if err != nil || len(newest) != 1 {
			t.Fatalf("newest packet: %v %v", newest, err)
		}
		img, err := cam.WaitLatest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ages = append(ages, time.Since(img.Time))
		if !img.Time.After(last) {
			t.Fatalf("frame %v not newer than %v", img.Time, last)
		}
		// How far the frame is behind the newest packet when the call
		// started (the follower decodes ahead; it may be mid-packet).
		lags = append(lags, time.Duration(max(int64(newest[0].ID.MS)-int64(img.ID.MS), 0))*time.Millisecond)
		last = img.Time
		img.Release()
		time.Sleep(200 * time.Millisecond)
	}
	live.Stop()
	sh := share()
	p50, p99 := percentile(ages, 50), percentile(ages, 99)
	lag50, lagMax := percentile(lags, 50), percentile(lags, 100)
	st := cam.Stats()
	t.Logf("latest under a 200 ms/frame consumer: %d frames, age p50 %v p99 %v; behind the newest packet p50 %v max %v; "+
		"decoded %d, converted %d, jumps %d; this process got %.2f of a CPU (median)", len(ages), p50.Round(time.Microsecond),
		p99.Round(time.Microsecond), lag50, lagMax, st.Decoded, st.Converted, st.Jumps, sh)
	// The frame returned is the newest decoded one: usually the newest
	// packet at the call, one interval behind only while the follower
	// decodes it. A frame one interval too old is behind at every call.
	if lag50 >= 40*time.Millisecond {
		t.Errorf("frames are %v (p50) behind the newest packet at the call, want less than one interval (40 ms)", lag50)
	}
	// 2x the README's p50 and p99 (26 and 47 ms): about one frame interval
	// plus one conversion. A frame too old, a GOP decoded per call, or
	// latency building up is past them. The README's figures are from a
	// quiet machine; on a loaded one the follower falls behind now and then,
	// so the p99 bound is divided by the CPU share measured during the run
	// (1 when quiet: exactly 2x). The p50 bound is not: the median frame is
	// decoded ahead of the call even on a loaded machine.
	if lim := 52 * time.Millisecond; p50 > lim {
		t.Errorf("frame age p50 %v, want at most %v (2x the README's 26 ms)", p50, lim)
	}
	if lim := time.Duration(float64(94*time.Millisecond) / sh); p99 > lim {
		t.Errorf("frame age p99 %v, want at most %v (2x the README's 47 ms, over a CPU share of %.2f)", p99, lim.Round(time.Millisecond), sh)
	}
	// Each packet is decoded at most once: no GOP is decoded again per call.
	if cs, err := mc.Stats(ctx, "live"); err != nil || st.Decoded > cs.Frames {
		t.Errorf("decoded %d packets of the %d the camera sent (%v): some more than once", st.Decoded, cs.Frames, err)
	}
	if st.Converted != int64(len(ages)) {
		t.Fatalf("converted %d images for %d returned: only the newest frame should be converted", st.Converted, len(ages))
	}
}

func TestProbeAndFormats(t *testing.T) {
	cl, _ := memClient(t, "clip720.mp4")
	ctx := context.Background()
	cam := cl.Camera("clip720.mp4", chrysalis.CameraOptions{Format: chrysalis.GRAY8, Width: 640, Height: 360})
	defer cam.Close()
	p, err := cam.Probe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.Frames != 100 || p.Keyframes != 2 || p.Codec != "h264" || p.Width != 1280 || p.StartMS != t0 || p.DurationSec != 3.96 {
		t.Fatalf("probe %+v", p)
	}
	got := collect(t, cam, ms(0), ms(99))
	ref := testclip.Reference(t, "clip720.mp4", "gray", 640, 360)
	if len(got) != 100 || got[0].Width != 640 || got[0].Height != 360 || got[0].Stride != 640 || len(got[0].Data) != 640*360 {
		t.Fatalf("gray 640x360: %d frames, first %dx%d stride %d", len(got), got[0].Width, got[0].Height, got[0].Stride)
	}
	checkExact(t, got, ref, 0)
	rgb := cl.Camera("clip720.mp4", chrysalis.CameraOptions{Format: chrysalis.RGB24})
	defer rgb.Close()
	img, err := rgb.Screenshot(ctx, ms(0))
	if err != nil {
		t.Fatal(err)
	}
	bgr := testclip.Reference(t, "clip720.mp4", "bgr24", 0, 0)[0]
	if img.Data[0] != bgr[2] || img.Data[2] != bgr[0] || img.Format != chrysalis.RGB24 {
		t.Fatal("rgb24 is not bgr24 with channels swapped")
	}
	// image.Image view and Clone.
	c := img.Clone()
	c.Data[0] ^= 0xff
	if img.Data[0] == c.Data[0] {
		t.Fatal("Clone shares its buffer")
	}
	r, g, b, _ := img.Image().At(0, 0).RGBA()
	if uint8(r>>8) != img.Data[0] || uint8(g>>8) != img.Data[1] || uint8(b>>8) != img.Data[2] {
		t.Fatal("image view of RGB24 disagrees with Data")
	}
}

func TestKeyframesOnly(t *testing.T) {
	cl, _ := memClient(t, "clip720.mp4")
	cam := cl.Camera("clip720.mp4", chrysalis.CameraOptions{KeyframesOnly: true})
	defer cam.Close()
	got := collect(t, cam, ms(0), ms(99))
	if len(got) != 2 || !got[0].Time.Equal(ms(0)) || !got[1].Time.Equal(ms(50)) {
		t.Fatalf("keyframes only: %d images", len(got))
	}
	if st := cam.Stats(); st.Decoded != 2 {
		t.Fatalf("keyframes only decoded %d packets, want 2", st.Decoded)
	}
	img, err := cam.Latest(context.Background())
	if err != nil || img == nil || !img.Time.Equal(ms(50)) {
		t.Fatalf("latest keyframe: %v %v", img, err)
	}
	if st := cam.Stats(); st.Decoded != 3 {
		t.Fatalf("keyframes-only latest decoded %d packets in all, want 3", st.Decoded)
	}
}

// Resolution change inside the stream (Annex-B, in-band SPS) and a codec
// change between segments (H.264 then HEVC, with the codec info updated as
// a reconnecting ingest does).
func TestCodecAndResolutionChange(t *testing.T) {
	cl, _ := memClient(t, "reschange.ts")
	cam := cl.Camera("reschange.ts", chrysalis.CameraOptions{})
	defer cam.Close()
	got := collect(t, cam, ms(0), ms(99))
	if len(got) != 100 || got[0].Width != 640 || got[49].Width != 640 || got[50].Width != 1280 || got[99].Height != 720 {
		t.Fatalf("resolution change: %d frames", len(got))
	}
	mc := cache.NewMemory(cache.Retention{})
	defer mc.Close()
	h264, hevc := testclip.Load(t, "clip720.mp4"), testclip.Load(t, "hevc720.mp4")
	h264.Append(t, mc, "cam", t0, step)
	hevc.Append(t, mc, "cam", testclip.MS(t0, 100, step), step) // updates the codec info too
	cl2 := chrysalis.New(mc, chrysalis.Options{})
	cam2 := cl2.Camera("cam", chrysalis.CameraOptions{})
	defer cam2.Close()
	all := collect(t, cam2, ms(0), ms(199))
	if len(all) != 200 {
		t.Fatalf("h264 then hevc: %d frames, want 200", len(all))
	}
	if st := cam2.Stats(); st.Reinits != 1 {
		t.Fatalf("decoder re-created %d times, want 1", st.Reinits)
	}
	ref := testclip.Reference(t, "hevc720.mp4", "bgr24", 0, 0)
	checkExact(t, all[100:], ref, 0)
}

func TestCorruptPacket(t *testing.T) {
	clip := testclip.Load(t, "clip720.mp4")
	for i := 10; i < 13; i++ { // garbage in the middle of the first GOP
		clip.Packets[i].Data = make([]byte, 2000)
		rand.Read(clip.Packets[i].Data)
	}
	mc := cache.NewMemory(cache.Retention{})
	defer mc.Close()
	clip.Append(t, mc, "cam", t0, step)
	cam := chrysalis.New(mc, chrysalis.Options{}).Camera("cam", chrysalis.CameraOptions{Threads: 1})
	defer cam.Close()
	got := collect(t, cam, ms(0), ms(99))
	st := cam.Stats()
	t.Logf("corrupt packets: %d frames out, stats %+v", len(got), st)
	if st.Corrupt < 1 || st.Skipped < 30 {
		t.Fatalf("corrupt packets not detected/skipped: %+v", st)
	}
	if len(got) != 60 || !got[10].Time.Equal(ms(50)) {
		t.Fatalf("want frames 0..9 and 50..99 (60), got %d", len(got))
	}
	checkExact(t, got[10:], testclip.Reference(t, "clip720.mp4", "bgr24", 0, 0), 50)
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	cl, _ := memClient(t, "clip720.mp4")
	mc := cl.Cache()
	if err := mc.SetCodec(ctx, "empty", cache.Codec{Name: "h264"}); err != nil {
		t.Fatal(err)
	}
	unknown := cl.Camera("nope", chrysalis.CameraOptions{})
	empty := cl.Camera("empty", chrysalis.CameraOptions{})
	cam := cl.Camera("clip720.mp4", chrysalis.CameraOptions{})
	pastErr := func(c *chrysalis.Camera, a, b time.Time) error {
		for _, err := range c.Past(ctx, a, b) {
			if err != nil {
				return err
			}
		}
		return nil
	}
	_, probeUnknown := unknown.Probe(ctx)
	_, latestUnknown := unknown.Latest(ctx)
	_, probeEmpty := empty.Probe(ctx)
	_, latestEmpty := empty.Latest(ctx)
	var we *chrysalis.WindowError
	trimmed := pastErr(cam, ms(-10), ms(5))
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"probe unknown camera", probeUnknown, chrysalis.ErrUnknownCamera},
		{"latest unknown camera", latestUnknown, chrysalis.ErrUnknownCamera},
		{"past unknown camera", pastErr(unknown, ms(0), ms(1)), chrysalis.ErrUnknownCamera},
		{"probe empty cache", probeEmpty, chrysalis.ErrEmpty},
		{"latest empty cache", latestEmpty, chrysalis.ErrEmpty},
		{"window already trimmed", trimmed, chrysalis.ErrTrimmed},
		{"start after end", pastErr(cam, ms(5), ms(1)), chrysalis.ErrBadWindow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.want) {
				t.Fatalf("got %v, want %v", tc.err, tc.want)
			}
		})
	}
	if !errors.As(trimmed, &we) || we.First.UnixMilli() != t0 {
		t.Fatalf("trimmed window error does not say what the cache holds: %v", trimmed)
	}

	t.Run("redis auth failure", func(t *testing.T) {
		srv := testredis.Start(t, testredis.Options{Password: "s3cret"})
		_, err := chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: "redis://" + srv.Addr()}, chrysalis.Options{})
		if !errors.Is(err, chrysalis.ErrAuth) {
			t.Fatalf("no password: %v, want ErrAuth", err)
		}
		_, err = chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: "redis://:wrong@" + srv.Addr()}, chrysalis.Options{})
		if !errors.Is(err, chrysalis.ErrAuth) {
			t.Fatalf("wrong password: %v, want ErrAuth", err)
		}
		c, err := chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: srv.URL()}, chrysalis.Options{})
		if err != nil {
			t.Fatalf("right password: %v", err)
		}
		c.Close()
		acl := testredis.Start(t, testredis.Options{ACLUser: "vision", ACLPassword: "pw"})
		c, err = chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: acl.URL()}, chrysalis.Options{})
		if err != nil {
			t.Fatalf("ACL user: %v", err)
		}
		c.Close()
		_, err = chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: "redis://vision:bad@" + acl.Addr()}, chrysalis.Options{})
		if !errors.Is(err, chrysalis.ErrAuth) {
			t.Fatalf("ACL wrong password: %v, want ErrAuth", err)
		}
	})
	t.Run("redis TLS", func(t *testing.T) {
		srv := testredis.Start(t, testredis.Options{TLS: true})
		c, err := chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: srv.URL(), TLSCAFile: srv.CAFile}, chrysalis.Options{})
		if err != nil {
			t.Fatalf("TLS with the right CA: %v", err)
		}
		c.Close()
		_, err = chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: srv.URL()}, chrysalis.Options{}) // system CAs
		if !errors.Is(err, chrysalis.ErrTLS) {
			t.Fatalf("TLS without the CA: %v, want ErrTLS", err)
		}
		other := testredis.Start(t, testredis.Options{TLS: true}) // a different CA
		_, err = chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: srv.URL(), TLSCAFile: other.CAFile}, chrysalis.Options{})
		if !errors.Is(err, chrysalis.ErrTLS) {
			t.Fatalf("TLS with the wrong CA: %v, want ErrTLS", err)
		}
		bad := t.TempDir() + "/bad.pem"
		os.WriteFile(bad, []byte("not a cert"), 0o600)
		_, err = chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: srv.URL(), TLSCAFile: bad}, chrysalis.Options{})
		if !errors.Is(err, chrysalis.ErrTLS) {
			t.Fatalf("unusable CA file: %v, want ErrTLS", err)
		}
	})
	t.Run("redis unreachable", func(t *testing.T) {
		start := time.Now()
		_, err := chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: "redis://127.0.0.1:1/0"}, chrysalis.Options{})
		if !errors.Is(err, chrysalis.ErrUnreachable) {
			t.Fatalf("got %v, want ErrUnreachable", err)
		}
		t.Logf("unreachable reported after %v", time.Since(start))
	})
}

// percentile returns the p-th percentile (nearest rank) of ds, sorting it.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[max(int(math.Ceil(float64(len(ds))*p/100))-1, 0)]
}

// cpuShare measures, until the returned function is called, the share of
// a CPU this process's threads get: a goroutine locked to its thread spins
// 2 ms every 20 ms and compares the thread's CPU time (getrusage
// RUSAGE_THREAD) with the wall time. On a quiet machine the share is 1; on
// a 2-core machine with 8 runnable threads it is about 0.25. The returned
// function stops the probe and returns the median share.
func cpuShare(t *testing.T, ctx context.Context) func() float64 {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan float64, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		const rusageThread = 1 // RUSAGE_THREAD (Linux)
		cpu := func() time.Duration {
			var ru syscall.Rusage
			if err := syscall.Getrusage(rusageThread, &ru); err != nil {
				return 0
			}
			return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
		var shares []float64
		for ctx.Err() == nil {
			w0, c0 := time.Now(), cpu()
			for time.Since(w0) < 2*time.Millisecond {
			}
			if wall, c1 := time.Since(w0), cpu(); c0 > 0 && c1 > c0 {
				shares = append(shares, min(1, float64(c1-c0)/float64(wall)))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(shares) == 0 { // no per-thread CPU time here: assume quiet
			done <- 1
			return
		}
		slices.Sort(shares)
		done <- shares[len(shares)/2]
	}()
	var once sync.Once
	share := 1.0
	stop := func() float64 {
		once.Do(func() { cancel(); share = <-done })
		return share
	}
	t.Cleanup(func() { stop() })
	return stop
}
