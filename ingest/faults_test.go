package ingest_test

// The fault suite of docs/RELIABILITY.md: real processes (ffmpeg pushers,
// redis-server) on loopback, stopped, frozen, killed and fed corrupt
// bitstreams. Each test fails when the bound its row promises breaks, and
// logs the figure measured.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/ingest"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/chryscloud/chrysalis-go/internal/testx"
)

// gopClip writes a 320x240, 25 fps H.264 clip of the given length with a
// keyframe every 10 packets and no B-frames, and returns its path.
func gopClip(t testing.TB, seconds int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gop10.mp4")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
		"-i", fmt.Sprintf("testsrc2=size=320x240:rate=25:duration=%d", seconds), "-c:v", "libx264", "-preset", "veryfast",
		"-pix_fmt", "yuv420p", "-g", "10", "-keyint_min", "10", "-sc_threshold", "0", "-bf", "0", path).CombinedOutput(); err != nil {
		t.Fatalf("make clip: %v: %s", err, out)
	}
	return path
}

// checkWholeGOPs fails unless the packets' ids increase, their Numbers
// increase, and every run of contiguous Numbers starts at a keyframe (the
// cache never holds a GOP without its keyframe). It returns the number of
// breaks in the Numbers (gaps).
func checkWholeGOPs(t testing.TB, all []cache.Packet) (gaps int) {
	t.Helper()
	checkIDs(t, all)
	for i, p := range all {
		if i > 0 && p.Number <= all[i-1].Number {
			t.Fatalf("packet numbers out of order at %d: %d after %d", i, p.Number, all[i-1].Number)
		}
		runStart := i == 0 || p.Number != all[i-1].Number+1
		if i > 0 && runStart {
			gaps++
			t.Logf("gap: %d -> %d (%d numbers missing), first after it keyframe=%v", all[i-1].Number, p.Number,
				p.Number-all[i-1].Number-1, p.Keyframe)
		}
		if runStart && !p.Keyframe {
			t.Errorf("packet %d (entry %d, %v) starts a run of contiguous numbers but is not a keyframe: a GOP without its keyframe",
				p.Number, i, p.ID)
		}
	}
	return gaps
}

// pastAgainst decodes the camera's whole cache with Past and fails unless
// every image equals ffmpeg's decode of the clip's frame with the same
// presentation time (modulo the clip's length): no image is decoded across
// a gap or from a corrupt reference. It returns the images and the
// camera's counters.
func pastAgainst(t testing.TB, c cache.Cache, cam string, ref [][]byte, all []cache.Packet) (int, chrysalis.CameraStats) {
	t.Helper()
	ccam := chrysalis.New(c, chrysalis.Options{}).Camera(cam, chrysalis.CameraOptions{})
	defer ccam.Close()
	n := 0
	for img, err := range ccam.Past(context.Background(), all[0].ID.Time(), all[len(all)-1].ID.Time()) {
		if err != nil {
			t.Fatal(err)
		}
		i := int(math.Round(float64(img.PTS)*img.Packet.TimeBase*25)) % len(ref)
		if !bytes.Equal(img.Data, ref[i]) {
			t.Fatalf("image %d (packet %s, number %d) differs from ffmpeg's frame %d: %.1f dB", n, img.ID, img.Packet.Number, i,
				testclip.PSNR(img.Data, ref[i]))
		}
		n++
	}
	return n, ccam.Stats()
}

// pusher is a camera: ffmpeg pushing a clip in a loop, in real time, to an
// RTMP URL.
type pusher struct {
	cmd  *exec.Cmd
	done chan error // Wait's result, once
	mu   sync.Mutex
	err  bytes.Buffer
}

func (p *pusher) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err.Write(b)
}

func (p *pusher) stderr() string { p.mu.Lock(); defer p.mu.Unlock(); return p.err.String() }

// startPusher launches the pusher, again while it exits at once (the
// listener is not up yet), until ok reports that its packets arrive. It is
// killed at cleanup (SIGKILL also ends a stopped process).
func startPusher(t testing.TB, path, url string, ok func() bool) *pusher {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		p := &pusher{done: make(chan error, 1)}
		p.cmd = exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
			"-re", "-stream_loop", "-1", "-i", path, "-c", "copy", "-f", "flv", url)
		p.cmd.Stderr = p
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.done <- p.cmd.Wait() }()
		t.Cleanup(func() {
			_ = p.cmd.Process.Kill()
			<-p.done
			p.done <- nil
		})
		for {
			if ok() {
				return p
			}
			select {
			case err := <-p.done:
				p.done <- err
				if time.Now().After(deadline) {
					t.Fatalf("pusher: %v: %s", err, p.stderr())
				}
			case <-time.After(10 * time.Millisecond):
				if time.Now().After(deadline) {
					t.Fatalf("pusher's packets did not arrive within 15s: %s", p.stderr())
				}
				continue
			}
			break // exited: launch again
		}
		time.Sleep(50 * time.Millisecond) // poll interval of the relaunch loop
	}
}

func (p *pusher) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("pusher: %v: %v", sig, err)
	}
}

// TestFaultCameraStall: a camera pushing RTMP to a listening ingest is
// frozen (SIGSTOP): the ingest drops it within ReadTimeout (+ slack) and
// listens again. Resumed (SIGCONT), the frozen pusher finds its connection
// closed and exits; the camera reconnects (a new push) and is ingested
// again. Readers see the break as a gap in packet numbers: Past decodes
// every packet after it from its keyframe, never across it.
func TestFaultCameraStall(t *testing.T) {
	requireFFmpeg(t)
	const readTimeout = time.Second
	const detectBound = readTimeout + 2*time.Second // promised in docs/RELIABILITY.md
	const resumeBound = 5 * time.Second
	path := gopClip(t, 4)
	srv := testredis.Start(t, testredis.Options{})
	rc := dialRedis(t, srv, cache.Retention{MaxAge: 5 * time.Minute})
	const cam = "stall"
	url := fmt.Sprintf("rtmp://127.0.0.1:%d/live/cam", testx.FreePort(t))
	in, err := ingest.New(rc, ingest.Config{Camera: cam, Input: url, Listen: true, ReadTimeout: readTimeout,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, in)
	p := startPusher(t, path, url, func() bool { return in.Stats().Written >= 1 })
	waitFor(t, 15*time.Second, "50 packets written", func() bool { return in.Stats().Written >= 50 })

	p.signal(t, syscall.SIGSTOP)
	stopped := time.Now()
	waitFor(t, detectBound+5*time.Second, "the stalled pusher dropped", func() bool { return !in.Stats().Connected })
	detect := time.Since(stopped)
	atDetect := in.Stats()
	t.Logf("stall detected after %v (ReadTimeout %v): %s", detect.Round(time.Millisecond), readTimeout, atDetect.LastError)
	if detect > detectBound {
		t.Errorf("stall detected after %v, want <= %v", detect, detectBound)
	}

	p.signal(t, syscall.SIGCONT)
	select {
	case err := <-p.done:
		p.done <- err
		t.Logf("the resumed pusher exited: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatalf("the resumed pusher still runs 5s after SIGCONT: its connection was not closed")
	}
	relaunch := time.Now()
	startPusher(t, path, url, func() bool { return in.Stats().Written > atDetect.Written })
	resume := time.Since(relaunch)
	waitFor(t, 15*time.Second, "50 more packets written", func() bool { return in.Stats().Written >= atDetect.Written+50 })
	t.Logf("a new push ingested after %v", resume.Round(time.Millisecond))
	if resume > resumeBound {
		t.Errorf("new push ingested after %v, want <= %v", resume, resumeBound)
	}
	st, all := r.stopAndRange(t, rc, cam)
	gaps := checkWholeGOPs(t, all)
	n, cs := pastAgainst(t, rc, cam, testclip.Reference(t, path, "bgr24", 320, 240), all)
	t.Logf("stats %+v; cache %d packets, %d gaps; Past %d images, %+v", st, len(all), gaps, n, cs)
	if gaps < 1 || cs.Gaps < 1 {
		t.Errorf("the stall left %d gaps in the numbers, Past counted %d: want >= 1", gaps, cs.Gaps)
	}
	if st.Reconnects < 1 {
		t.Errorf("no reconnect counted")
	}
}

// redisRestart: a live camera (Realtime, looped) is ingested into a Redis
// that is killed (SIGKILL) and restarted on the same port, with or without
// an append-only file; a reader (Latest, its own connection) watches. Both
// must resume within 5 s of the restart. With AOF nothing is lost (the
// outage is buffered); without persistence, what was written before the
// kill is gone and nothing else.
func redisRestart(t *testing.T, persist bool) {
	requireFFmpeg(t)
	const resumeBound = 5 * time.Second
	path := gopClip(t, 4)
	srv := testredis.Start(t, testredis.Options{Persist: persist})
	rc := dialRedis(t, srv, cache.Retention{MaxAge: 5 * time.Minute})
	rr := dialRedis(t, srv, cache.Retention{})
	const cam = "restart"
	in, err := ingest.New(rc, ingest.Config{Camera: cam, Input: path, Realtime: true, Loop: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, in)
	reader := chrysalis.New(rr, chrysalis.Options{}).Camera(cam, chrysalis.CameraOptions{})
	defer reader.Close()
	// latest is one bounded Latest call.
	latest := func() (*chrysalis.ChImage, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return reader.Latest(ctx)
	}
	newer := func(after time.Time) func() bool {
		return func() bool {
			img, err := latest()
			return err == nil && img != nil && !img.Time.Before(after)
		}
	}
	waitFor(t, 10*time.Second, "25 packets written", func() bool { return in.Stats().Written >= 25 })
	waitFor(t, 10*time.Second, "a first image", newer(time.Time{}))

	srv.Kill()
	atKill := in.Stats()
	waitFor(t, 5*time.Second, "the ingest to see the outage", func() bool { return in.Stats().CacheErrors > atKill.CacheErrors })
	var readErr error
	waitFor(t, 5*time.Second, "the reader to see the outage", func() bool { _, readErr = latest(); return readErr != nil })
	t.Logf("reader during the outage: %v", readErr)
	if !errors.Is(readErr, rediscache.ErrUnreachable) {
		t.Errorf("reader's error %v is not rediscache.ErrUnreachable", readErr)
	}

	srv.Restart()
	restarted := time.Now()
	atRestart := in.Stats()
	waitFor(t, resumeBound+5*time.Second, "the buffer written after the restart", func() bool {
		s := in.Stats()
		return s.Written > atRestart.Written && s.Buffered <= 1
	})
	ingestResume := time.Since(restarted)
	waitFor(t, resumeBound+5*time.Second, "an image captured after the restart", newer(restarted))
	readerResume := time.Since(restarted)
	t.Logf("persist=%v: ingest caught up %v after the restart (%d packets buffered then), reader %v",
		persist, ingestResume.Round(time.Millisecond), atRestart.Buffered, readerResume.Round(time.Millisecond))
	if ingestResume > resumeBound || readerResume > resumeBound {
		t.Errorf("resumed after %v (ingest) and %v (reader), want <= %v", ingestResume, readerResume, resumeBound)
	}
	st, all := r.stopAndRange(t, rc, cam)
	t.Logf("stats %+v; %d packets cached, first number %d", st, len(all), all[0].Number)
	if st.Dropped != 0 || st.Written != st.Packets {
		t.Errorf("packets dropped with a 60 s buffer: %+v", st)
	}
	if persist {
		if int64(len(all)) != st.Written || all[0].Number != 1 {
			t.Errorf("with AOF: %d cached (first number %d), %d written: want all, from 1", len(all), all[0].Number, st.Written)
		}
		checkWholeGOPs(t, all)
	} else {
		// Lost: exactly what was written before the kill.
		if int64(len(all)) != st.Written-atKill.Written || all[0].Number != atKill.Written+1 {
			t.Errorf("without persistence: %d cached from number %d; want %d written - %d before the kill, from %d",
				len(all), all[0].Number, st.Written, atKill.Written, atKill.Written+1)
		}
		// The cache restarts mid-GOP: those packets are skipped by readers.
		checkWholeGOPs(t, all[firstKey(all):])
	}
	if _, err := rc.Codec(context.Background(), cam); err != nil {
		t.Errorf("codec info after the restart: %v", err)
	}
}

func firstKey(all []cache.Packet) int {
	for i, p := range all {
		if p.Keyframe {
			return i
		}
	}
	return len(all)
}

// TestFaultRedisKillRestart: see redisRestart.
func TestFaultRedisKillRestart(t *testing.T) {
	t.Run("NoPersistence", func(t *testing.T) { redisRestart(t, false) })
	t.Run("AOF", func(t *testing.T) { redisRestart(t, true) })
}

// TestFaultRedisFrozen: redis-server is frozen (SIGSTOP) for 3 × Buffer.
// A reader's call returns an error wrapping rediscache.ErrUnreachable
// within 2 × go-redis's read timeout (3 s) + 1 s instead of hanging; the
// ingest keeps reading the camera, drops whole GOPs beyond its 1 s Buffer,
// and writes again within 5 s of SIGCONT.
func TestFaultRedisFrozen(t *testing.T) {
	requireFFmpeg(t)
	// go-redis's read timeout (3 s) for the command, and as much again for
	// a fresh connection's handshake when the pool's was closed by an
	// earlier timeout; plus 1 s.
	const readBound = 7 * time.Second
	const resumeBound = 5 * time.Second
	const buffer = time.Second
	path := gopClip(t, 4)
	srv := testredis.Start(t, testredis.Options{})
	rc := dialRedis(t, srv, cache.Retention{MaxAge: 5 * time.Minute})
	rr := dialRedis(t, srv, cache.Retention{})
	const cam = "frozen"
	in, err := ingest.New(rc, ingest.Config{Camera: cam, Input: path, Realtime: true, Loop: true, Buffer: buffer,
		Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, in)
	reader := chrysalis.New(rr, chrysalis.Options{}).Camera(cam, chrysalis.CameraOptions{})
	defer reader.Close()
	waitFor(t, 10*time.Second, "25 packets written", func() bool { return in.Stats().Written >= 25 })

	srv.Pause()
	defer srv.Resume()
	frozen := time.Now()
	atFreeze := in.Stats()
	// A reader with no deadline of its own.
	type result struct {
		err  error
		took time.Duration
	}
	read := func(f func(ctx context.Context) error) result {
		t0 := time.Now()
		ch := make(chan error, 1)
		go func() { ch <- f(context.Background()) }()
		select {
		case err := <-ch:
			return result{err, time.Since(t0)}
		case <-time.After(readBound + 10*time.Second):
			t.Fatalf("read hung for %v on a frozen Redis", readBound+10*time.Second)
			return result{}
		}
	}
	past := read(func(ctx context.Context) error {
		for _, err := range reader.Past(ctx, frozen.Add(-time.Second), frozen) {
			if err != nil {
				return err
			}
		}
		return nil
	})
	probe := read(func(ctx context.Context) error { _, err := reader.Probe(ctx); return err })
	for name, res := range map[string]result{"Past": past, "Probe": probe} {
		t.Logf("%s on the frozen Redis: %v after %v", name, res.err, res.took.Round(time.Millisecond))
		if !errors.Is(res.err, rediscache.ErrUnreachable) || res.took > readBound {
			t.Errorf("%s: %v after %v; want rediscache.ErrUnreachable within %v", name, res.err, res.took, readBound)
		}
	}
	waitFor(t, 10*time.Second, "3 × Buffer of packets read while frozen, GOPs dropped", func() bool {
		s := in.Stats()
		return s.Packets >= atFreeze.Packets+3*25 && s.Dropped > 0
	})
	atThaw := in.Stats()
	srv.Resume()
	thawed := time.Now()
	waitFor(t, resumeBound+5*time.Second, "the buffer written after SIGCONT", func() bool {
		s := in.Stats()
		return s.Written > atThaw.Written && s.Buffered <= 1
	})
	resume := time.Since(thawed)
	t.Logf("frozen %v; at SIGCONT %d read/%d written/%d buffered/%d dropped; caught up %v after SIGCONT",
		thawed.Sub(frozen).Round(time.Millisecond), atThaw.Packets, atThaw.Written, atThaw.Buffered, atThaw.Dropped,
		resume.Round(time.Millisecond))
	if resume > resumeBound {
		t.Errorf("writes resumed %v after SIGCONT, want <= %v", resume, resumeBound)
	}
	st, all := r.stopAndRange(t, rc, cam)
	gaps := checkWholeGOPs(t, all)
	t.Logf("stats %+v; %d cached, %d gaps", st, len(all), gaps)
	// A write that timed out on the frozen server may land when it
	// resumes, after the ingest gave up on it (counted dropped): the cache
	// may hold one packet more than Written, the tail of a GOP.
	if st.Written+st.Dropped != st.Packets || gaps == 0 || int64(len(all)) < st.Written || int64(len(all)) > st.Written+1 {
		t.Errorf("written %d + dropped %d != read %d, or %d gaps, or %d cached", st.Written, st.Dropped, st.Packets, gaps, len(all))
	}
	n, cs := pastAgainst(t, rc, cam, testclip.Reference(t, path, "bgr24", 320, 240), all)
	if n != len(all) || cs.Gaps != int64(gaps) {
		t.Errorf("Past: %d images of %d packets, %+v", n, len(all), cs)
	}
}

// TestFaultCorruptBitstream: the ffmpeg CLI's noise bitstream filter
// corrupts three packets of a clip (a P-frame, a keyframe, another
// P-frame), which is ingested into Redis. Past never delivers an image
// that differs from ffmpeg's decode of the clean clip, counts the corrupt
// packets, and decodes again from the next keyframe: every GOP without a
// corrupt packet is delivered whole.
func TestFaultCorruptBitstream(t *testing.T) {
	requireFFmpeg(t)
	clean := gopClip(t, 4)
	noisy := filepath.Join(t.TempDir(), "noisy.mp4")
	corrupt := map[int]bool{13: true, 30: true, 57: true} // 0-based packet indexes
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", clean, "-c", "copy",
		"-bsf:v", `noise=amount=if(eq(n\,13)+eq(n\,30)+eq(n\,57)\,64\,0)`, noisy).CombinedOutput(); err != nil {
		t.Fatalf("noise: %v: %s", err, out)
	}
	cp, np := testclip.Load(t, clean).Packets, testclip.Load(t, noisy).Packets
	if len(cp) != 100 || len(np) != 100 {
		t.Fatalf("%d and %d packets", len(cp), len(np))
	}
	for i := range cp {
		if differs := !bytes.Equal(cp[i].Data, np[i].Data); differs != corrupt[i] {
			t.Fatalf("packet %d: changed %v, want %v", i, differs, corrupt[i])
		}
	}
	srv := testredis.Start(t, testredis.Options{})
	rc := dialRedis(t, srv, cache.Retention{})
	const cam = "noisy"
	in, err := ingest.New(rc, ingest.Config{Camera: cam, Input: noisy, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	all, err := rc.Range(context.Background(), cam, cache.MinID, cache.MaxID, 0)
	if err != nil || len(all) != 100 {
		t.Fatalf("%d cached, %v", len(all), err)
	}
	ref := testclip.Reference(t, clean, "bgr24", 320, 240)
	ccam := chrysalis.New(rc, chrysalis.Options{}).Camera(cam, chrysalis.CameraOptions{})
	defer ccam.Close()
	got := map[int]bool{}
	for img, err := range ccam.Past(context.Background(), all[0].ID.Time(), all[99].ID.Time()) {
		if err != nil {
			t.Fatal(err)
		}
		i := int(img.Packet.Number - 1)
		if !bytes.Equal(img.Data, ref[i]) {
			t.Errorf("frame %d delivered corrupt: %.1f dB from ffmpeg's decode of the clean clip", i, testclip.PSNR(img.Data, ref[i]))
		}
		got[i] = true
	}
	cs := ccam.Stats()
	t.Logf("%d of 100 frames delivered; stats %+v", len(got), cs)
	for g := 0; g < 10; g++ {
		touched := false
		for i := g * 10; i < g*10+10; i++ {
			touched = touched || corrupt[i]
		}
		for i := g * 10; i < g*10+10 && !touched; i++ {
			if !got[i] {
				t.Errorf("frame %d of the intact GOP %d was not delivered: decoding did not resume at its keyframe", i, g)
			}
		}
	}
	if cs.Corrupt < 1 || cs.Corrupt > 3 || cs.Skipped < 1 {
		t.Errorf("stats %+v: want 1..3 corrupt packets counted and the rest of their GOPs skipped", cs)
	}
}
