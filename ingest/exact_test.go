package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/ingest"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/chryscloud/chrysalis-go/internal/testrtsp"
	"github.com/chryscloud/chrysalis-go/internal/testx"
)

// The byte-exact tests: what the ingest caches is the source's packets,
// byte for byte, in order, none missing and none repeated. The source's
// packets are read by the ffprobe CLI (testclip.Load), which shares no code
// with the ingest. MP4 and FLV carry H.264 length-prefixed (AVCC), and
// FFmpeg's RTP depacketizer emits Annex B (a start code per NAL unit), so
// an RTSP pull is compared with the source rewritten as Annex B.

// cachedData returns the payloads of every packet cam holds, in id order.
func cachedData(t testing.TB, c cache.Cache, cam string) [][]byte {
	t.Helper()
	pkts, err := c.Range(context.Background(), cam, cache.MinID, cache.MaxID, 0)
	if err != nil {
		t.Fatalf("Range %s: %v", cam, err)
	}
	checkIDs(t, pkts)
	out := make([][]byte, len(pkts))
	for i, p := range pkts {
		out[i] = p.Data
	}
	return out
}

// cachedCount is the number of packets cam holds (0 before the first).
func cachedCount(t testing.TB, c cache.Cache, cam string) int {
	t.Helper()
	st, err := c.Stats(context.Background(), cam)
	if err != nil {
		return 0
	}
	return int(st.Frames)
}

// concat joins packet lists.
func concat(lists ...[][]byte) [][]byte { return slices.Concat(lists...) }

// prefixLen is how many packets at the start of got equal want's, in order.
func prefixLen(got, want [][]byte) int {
	n := 0
	for n < len(got) && n < len(want) && bytes.Equal(got[n], want[n]) {
		n++
	}
	return n
}

// leakCheck registers a goroutine-leak check that runs after the test's
// other cleanups (it is registered first): every goroutine the test's
// ingest started has exited once Run returned.
func leakCheck(t *testing.T) {
	t.Helper()
	before := goleak.IgnoreCurrent() // the goroutines running now, not at cleanup
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}

// TestFileByteExact: a file read once caches each of its video packets
// byte for byte, in order, none missing, none repeated (H.264, H.264 with
// B-frames, HEVC).
func TestFileByteExact(t *testing.T) {
	requireFFmpeg(t)
	for _, name := range []string{"clip720.mp4", "bframes720.mp4", "hevc720.mp4"} {
		t.Run(name, func(t *testing.T) {
			leakCheck(t)
			src := testclip.Load(t, name)
			m := cache.NewMemory(cache.Retention{})
			in, err := ingest.New(m, ingest.Config{Camera: "f", Input: clip(name), Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			if err := start(t, in).wait(t, 20*time.Second); err != nil {
				t.Fatalf("Run: %v", err)
			}
			got := cachedData(t, m, "f")
			testclip.SamePackets(t, name+" cached vs ffprobe", got, src.Data())
			t.Logf("%s: %s, byte for byte", name, testclip.Describe(got))
		})
	}
}

// rtmpServer is `ffmpeg -re -i clip -c copy -f flv -listen 1 URL`: an RTMP
// server that sends the clip once, from its first packet, to the first
// client that plays URL, then exits.
type rtmpServer struct {
	cmd  *exec.Cmd
	done chan error
	out  *bytes.Buffer
}

func serveRTMP(t testing.TB, path, url string) *rtmpServer {
	t.Helper()
	s := &rtmpServer{done: make(chan error, 1), out: &bytes.Buffer{}}
	s.cmd = exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
		"-re", "-i", path, "-c", "copy", "-f", "flv", "-listen", "1", url)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("ffmpeg RTMP server: %v", err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(s.kill)
	return s
}

// kill kills the server (SIGKILL) and waits for it; idempotent.
func (s *rtmpServer) kill() {
	_ = s.cmd.Process.Kill()
	err := <-s.done
	s.done <- err
}

// wait waits for the server to exit on its own (it sent the whole clip).
func (s *rtmpServer) wait(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Fatalf("ffmpeg RTMP server: %v: %s", err, s.out)
		}
	case <-time.After(d):
		t.Fatalf("ffmpeg RTMP server did not finish within %v", d)
	}
}

// pullConfig is a pulling camera that reconnects quickly.
func pullConfig(t testing.TB, cam, url string) ingest.Config {
	return ingest.Config{Camera: cam, Input: url, BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		ReadTimeout: 5 * time.Second, Logger: testLogger(t)}
}

// TestRTMPPullByteExact: the ingest pulls from an RTMP server (ffmpeg
// -listen 1 serving the clip) into Redis. The first server sends the whole
// clip: the cache holds exactly its packets. A second server is killed
// mid-clip and a third started on the same port: the ingest reconnects and
// the cache then holds clip + a prefix of the clip (everything the killed
// server got out, nothing in between lost) + clip.
func TestRTMPPullByteExact(t *testing.T) {
	requireFFmpeg(t)
	leakCheck(t)
	path := clip("clip720.mp4")
	src := testclip.Load(t, "clip720.mp4").Data()
	srv := testredis.Start(t, testredis.Options{})
	rc := dialRedis(t, srv, cache.Retention{MaxAge: 5 * time.Minute})
	const cam = "pull"
	url := fmt.Sprintf("rtmp://127.0.0.1:%d/live/x", testx.FreePort(t))

	in, err := ingest.New(rc, pullConfig(t, cam, url))
	if err != nil {
		t.Fatal(err)
	}
	s1 := serveRTMP(t, path, url)
	r := start(t, in)
	s1.wait(t, 20*time.Second)
	waitFor(t, 10*time.Second, "the whole clip in the cache", func() bool { return cachedCount(t, rc, cam) >= len(src) })
	testclip.SamePackets(t, "first server", cachedData(t, rc, cam), src)

	// An outage: the second server dies mid-clip.
	waitFor(t, 10*time.Second, "a reconnect after the first server ended", func() bool { return in.Stats().Reconnects >= 1 })
	s2 := serveRTMP(t, path, url)
	waitFor(t, 15*time.Second, "30 packets from the second server", func() bool { return cachedCount(t, rc, cam) >= len(src)+30 })
	s2.kill()
	atKill := cachedCount(t, rc, cam) - len(src)
	rec := in.Stats().Reconnects
	waitFor(t, 10*time.Second, "a reconnect after the kill", func() bool { return in.Stats().Reconnects > rec })
	s3 := serveRTMP(t, path, url)
	s3.wait(t, 20*time.Second)
	got := cachedData(t, rc, cam)
	waitFor(t, 10*time.Second, "the third server's clip in the cache", func() bool {
		got = cachedData(t, rc, cam)
		return len(got) >= 2*len(src)+atKill
	})
	mid := prefixLen(got[len(src):], src)
	t.Logf("cached %d: clip (%d) + %d of the killed server's (%d cached at the kill) + clip; %d reconnects",
		len(got), len(src), mid, atKill, in.Stats().Reconnects)
	if mid < atKill || mid >= len(src) {
		t.Fatalf("after the first clip, %d packets equal the clip's first ones; want the %d..%d the killed server got out",
			mid, atKill, len(src)-1)
	}
	testclip.SamePackets(t, "first, killed and third server", got, concat(src, src[:mid], src))
	if err, took := r.stop(t); err != nil || took > 2*time.Second {
		t.Fatalf("stop: %v after %v", err, took)
	}
}

// TestRTSPPullByteExact: the ingest pulls RTSP (over TCP) from a server
// that sends the clip on each PLAY. Every access unit arrives byte for
// byte (as Annex B). The server is stopped after the clip and started again
// on the same port: the ingest reconnects and caches the clip a second
// time, exactly.
func TestRTSPPullByteExact(t *testing.T) {
	requireFFmpeg(t)
	leakCheck(t)
	c := testclip.Load(t, "clip720.mp4")
	lsz, _ := c.AVCC()
	var src [][]byte
	for _, p := range c.Packets {
		src = append(src, testclip.ToAnnexB(t, p.Data, lsz))
	}
	srv := testredis.Start(t, testredis.Options{})
	rc := dialRedis(t, srv, cache.Retention{MaxAge: 5 * time.Minute})
	rs := testrtsp.Start(t, c)
	const cam = "rtsp"
	cfg := pullConfig(t, cam, rs.URL())
	cfg.InputOptions = map[string]string{"rtsp_transport": "tcp"}
	in, err := ingest.New(rc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, in)

	// The parser holding the last access unit until the next one starts,
	// it comes out when the connection ends: stop the server once it sent
	// everything and the cache holds all but that one.
	waitFor(t, 20*time.Second, "the server to send the clip", func() bool { return rs.Finished() >= 1 })
	waitFor(t, 10*time.Second, "the clip but its last packet in the cache", func() bool {
		return cachedCount(t, rc, cam) >= len(src)-1
	})
	rec := in.Stats().Reconnects
	rs.Stop()
	waitFor(t, 10*time.Second, "a reconnect after the server stopped", func() bool { return in.Stats().Reconnects > rec })
	testclip.SamePackets(t, "first server", cachedData(t, rc, cam), src)

	rs.Restart()
	waitFor(t, 20*time.Second, "the restarted server to send the clip", func() bool { return rs.Finished() >= 2 })
	waitFor(t, 10*time.Second, "the second clip but its last packet", func() bool {
		return cachedCount(t, rc, cam) >= 2*len(src)-1
	})
	rs.Stop()
	waitFor(t, 10*time.Second, "the second clip's last packet", func() bool { return cachedCount(t, rc, cam) >= 2*len(src) })
	got := cachedData(t, rc, cam)
	st := in.Stats()
	t.Logf("cached %s over %d plays; stats %+v", testclip.Describe(got), rs.Plays(), st)
	testclip.SamePackets(t, "first and restarted server", got, concat(src, src))
	if st.Skipped != 0 {
		t.Errorf("%d packets skipped before a keyframe; each PLAY starts at the clip's first (a keyframe)", st.Skipped)
	}
	if err, took := r.stop(t); err != nil || took > 2*time.Second {
		t.Fatalf("stop: %v after %v", err, took)
	}
}
