package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/ingest"
)

func TestMain(m *testing.M) {
	// FFmpeg's own chatter (a listener being interrupted, a refused
	// connection) is expected in these tests; keep errors only.
	astiav.SetLogLevel(astiav.LogLevelFatal)
	// go-redis logs its dial retries while a test's Redis is down on
	// purpose; the ingest's own log says what matters.
	redis.SetLogger(quietRedis{})
	// The package doc promises every goroutine Run starts has exited when
	// it returns: nothing may be left once every test is done.
	goleak.VerifyTestMain(m)
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// requireFFmpeg skips when the ffmpeg/ffprobe CLIs are missing, except
// under CI=true, where it fails (same policy as testredis.Require).
func requireFFmpeg(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found and CI=true: %v", tool, err)
			}
			t.Skipf("%s not installed; run `make deps`", tool)
		}
	}
}

func clip(name string) string { return filepath.Join("..", "testdata", name) }

// probeCounts returns the number of video packets and keyframes ffprobe
// reads from path.
func probeCounts(t testing.TB, path string) (packets, keyframes int) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-count_packets",
		"-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	packets, err = strconv.Atoi(strings.TrimSpace(strings.Split(string(out), "\n")[0]))
	if err != nil {
		t.Fatalf("ffprobe %s: %q: %v", path, out, err)
	}
	out, err = exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=flags",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "K") {
			keyframes++
		}
	}
	return packets, keyframes
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// running is an Ingest running in the background.
type running struct {
	in     *ingest.Ingest
	cancel context.CancelFunc
	done   chan error
}

// start runs in until the test ends (or stop).
func start(t testing.TB, in *ingest.Ingest) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{in: in, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- in.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return within 10s of cancel")
		}
	})
	return r
}

// stop cancels and returns Run's result and how long it took to return.
func (r *running) stop(t testing.TB) (error, time.Duration) {
	t.Helper()
	t0 := time.Now()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err, time.Since(t0)
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not return within 10s of cancel")
		return nil, 0
	}
}

// stopAndRange stops Run (failing t on its error) and returns the ingest's
// final stats and every packet c holds for cam.
func (r *running) stopAndRange(t testing.TB, c cache.Cache, cam string) (ingest.Stats, []cache.Packet) {
	t.Helper()
	if err, _ := r.stop(t); err != nil {
		t.Fatal(err)
	}
	st := r.in.Stats()
	all, err := c.Range(context.Background(), cam, cache.MinID, cache.MaxID, 0)
	if err != nil {
		t.Fatal(err)
	}
	return st, all
}

// wait waits for Run to return on its own.
func (r *running) wait(t testing.TB, d time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(d):
		t.Fatalf("Run did not return within %v", d)
		return nil
	}
}

// waitFor polls cond every 10ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// push runs `ffmpeg -re -i clip -c copy -f flv url` to completion,
// relaunching it while the listener is not up yet (connection refused).
func push(t testing.TB, ctx context.Context, path, url string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for attempt := 1; ; attempt++ {
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
			"-re", "-i", path, "-c", "copy", "-f", "flv", url)
		cmd.Stderr = &stderr
		err := cmd.Run()
		if err == nil {
			t.Logf("pusher done after %d attempt(s)", attempt)
			return
		}
		refused := strings.Contains(stderr.String(), "Connection refused")
		if !refused || time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("ffmpeg push to %s: %v: %s", url, err, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkIDs fails unless the packets' ids strictly increase.
func checkIDs(t testing.TB, pkts []cache.Packet) {
	t.Helper()
	for i := 1; i < len(pkts); i++ {
		if pkts[i].ID.Compare(pkts[i-1].ID) <= 0 {
			t.Fatalf("id %d (%v) does not increase after %v", i, pkts[i].ID, pkts[i-1].ID)
		}
	}
}

// decodeFirstKeyframe opens an H.264 decoder with the codec info's
// extradata and decodes one keyframe packet; it returns the frame size.
func decodeFirstKeyframe(cd cache.Codec, key []byte) (w, h int, err error) {
	dec := astiav.FindDecoder(astiav.CodecIDH264)
	if dec == nil {
		return 0, 0, errors.New("no H.264 decoder")
	}
	cc := astiav.AllocCodecContext(dec)
	defer cc.Free()
	if len(cd.Extradata) > 0 {
		if err := cc.SetExtraData(cd.Extradata); err != nil {
			return 0, 0, err
		}
	}
	cc.SetWidth(cd.Width)
	cc.SetHeight(cd.Height)
	if err := cc.Open(dec, nil); err != nil {
		return 0, 0, fmt.Errorf("open decoder: %w", err)
	}
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	if err := pkt.FromData(key); err != nil {
		return 0, 0, err
	}
	pkt.SetFlags(astiav.NewPacketFlags(astiav.PacketFlagKey))
	if err := cc.SendPacket(pkt); err != nil {
		return 0, 0, fmt.Errorf("send packet: %w", err)
	}
	if err := cc.SendPacket(nil); err != nil { // drain
		return 0, 0, fmt.Errorf("flush: %w", err)
	}
	f := astiav.AllocFrame()
	defer f.Free()
	if err := cc.ReceiveFrame(f); err != nil {
		return 0, 0, fmt.Errorf("receive frame: %w", err)
	}
	return f.Width(), f.Height(), nil
}
