package replay_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/replay"
	"github.com/chryscloud/chrysalis-go/sink"
)

// appendNumbered writes clip into c as camera cam, packet i stamped
// stamp(i) and numbered i+1 as the ingest does, leaving out the packets
// drop selects (a gap in the numbering).
func appendNumbered(t *testing.T, c cache.Cache, clip *testclip.Clip, cam string, stamp func(i int) int64, drop func(i int) bool) {
	t.Helper()
	ctx := context.Background()
	if err := c.SetCodec(ctx, cam, clip.CacheCodec()); err != nil {
		t.Fatal(err)
	}
	for i, p := range clip.Packets {
		if drop != nil && drop(i) {
			continue
		}
		var extra []byte
		if p.Key {
			extra = clip.Extradata
		}
		if _, err := c.Append(ctx, cam, &cache.Packet{Timestamp: stamp(i), Keyframe: p.Key, Data: p.Data,
			PTS: p.PTS, DTS: p.DTS, TimeBase: clip.TimeBase, Width: clip.Width, Height: clip.Height, CodecName: clip.Codec,
			Extradata: extra, Number: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
}

// cachedIDs lists the ids of the cache's packets in [from, to].
func cachedIDs(t *testing.T, c cache.Cache, cam string, from, to cache.ID) []cache.ID {
	t.Helper()
	pkts, err := c.Range(context.Background(), cam, from, to, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]cache.ID, len(pkts))
	for i, p := range pkts {
		ids[i] = p.ID
	}
	return ids
}

// samePackets checks that got are packet-only images of exactly want.
func samePackets(t *testing.T, got []flow.Image, want []cache.ID) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d packets, want %d", len(got), len(want))
	}
	for i, img := range got {
		if img.ID != want[i] || img.Packet.ID != want[i] {
			t.Fatalf("packet %d is %v, want %v", i, img.ID, want[i])
		}
		if img.Data != nil || len(img.Packet.Data) == 0 || !img.Time.Equal(want[i].Time()) {
			t.Fatalf("packet %d: %d pixel bytes, %d packet bytes, time %v: not a packet-only image", i, len(img.Data),
				len(img.Packet.Data), img.Time)
		}
	}
	if !got[0].Keyframe {
		t.Fatalf("the replay starts at %v, not a keyframe", got[0].ID)
	}
}

// Packet mode replays every cached packet of the window from the keyframe
// at or before its first packet, in cache order, without decoding.
// clip720: 100 packets, keyframes at 0 and 50.
func TestWindowReplayPackets(t *testing.T) {
	defer goleak.VerifyNone(t)
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{})
	defer mc.Close()
	clip.Append(t, mc, "cam", t0, step)
	cl := chrysalis.New(mc, chrysalis.Options{})
	id := func(i int) cache.ID { return cache.IDAt(ms(i)) }
	pre, post := 80*time.Millisecond, 120*time.Millisecond // [t-2, t+3] frames

	t.Run("from the keyframe", func(t *testing.T) {
		wr := &replay.Window{Client: cl, Camera: "cam", Pre: pre, Post: post, Packets: true}
		got, err := runOp(t, wr, triggers(ms(60)))
		if err != nil {
			t.Fatal(err)
		}
		samePackets(t, got, cachedIDs(t, mc, "cam", id(50), id(63)))
		if wr.Frames() != int64(len(got)) || wr.Skipped() != 0 {
			t.Fatalf("counters: %d frames, %d skipped", wr.Frames(), wr.Skipped())
		}
	})
	t.Run("a window inside the GOP where the last ended continues it", func(t *testing.T) {
		wr := &replay.Window{Client: cl, Camera: "cam", Pre: pre, Post: post, Packets: true}
		got, err := runOp(t, wr, triggers(ms(60), ms(75)))
		if err != nil {
			t.Fatal(err)
		}
		samePackets(t, got, cachedIDs(t, mc, "cam", id(50), id(78)))
		if wr.Windows() != 2 {
			t.Fatalf("%d windows, want 2", wr.Windows())
		}
	})
	t.Run("windows in other GOPs start at their keyframes", func(t *testing.T) {
		wr := &replay.Window{Client: cl, Camera: "cam", Pre: pre, Post: post, Packets: true}
		got, err := runOp(t, wr, triggers(ms(20), ms(80)))
		if err != nil {
			t.Fatal(err)
		}
		want := append(cachedIDs(t, mc, "cam", id(0), id(23)), cachedIDs(t, mc, "cam", id(50), id(83))...)
		samePackets(t, got, want)
	})
}

// On a cache whose packets share milliseconds (a writer that was not
// paced), a window holds every packet of its milliseconds, and the start
// is the keyframe before the window's first packet, not the last keyframe
// of its first millisecond.
func TestWindowReplayPacketsBurst(t *testing.T) {
	defer goleak.VerifyNone(t)
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{})
	defer mc.Close()
	// Four packets a millisecond: packets 48..51 share t0+12 ms, and 50 is
	// a keyframe.
	appendNumbered(t, mc, clip, "burst", func(i int) int64 { return t0 + int64(i/4) }, nil)
	cl := chrysalis.New(mc, chrysalis.Options{})
	at := func(ms int64) time.Time { return time.UnixMilli(t0 + ms).UTC() }
	wr := &replay.Window{Client: cl, Camera: "burst", Post: 10 * time.Millisecond, Packets: true}
	got, err := runOp(t, wr, triggers(at(12))) // [t0+12, t0+22]: packets 48..91, from keyframe 0
	if err != nil {
		t.Fatal(err)
	}
	samePackets(t, got, cachedIDs(t, mc, "burst", cache.IDAt(at(0)), cache.ID{MS: uint64(t0 + 22), Seq: ^uint64(0)}))
	if len(got) != 92 {
		t.Fatalf("%d packets, want 92 (0..91)", len(got))
	}
	// The whole clip in one millisecond's window.
	wr = &replay.Window{Client: cl, Camera: "burst", Post: 30 * time.Millisecond, Packets: true}
	if got, err = runOp(t, wr, triggers(at(0))); err != nil || len(got) != len(clip.Packets) {
		t.Fatalf("%d packets (%v), want %d", len(got), err, len(clip.Packets))
	}
}

// After a gap in the packet numbering the replay skips to the next
// keyframe, counts what it skipped, and never emits a packet that cannot
// be decoded.
func TestWindowReplayPacketsGap(t *testing.T) {
	defer goleak.VerifyNone(t)
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{})
	defer mc.Close()
	appendNumbered(t, mc, clip, "gap", func(i int) int64 { return testclip.MS(t0, i, step) }, func(i int) bool { return i >= 20 && i < 23 })
	cl := chrysalis.New(mc, chrysalis.Options{})
	var logs bytes.Buffer
	wr := &replay.Window{Client: cl, Camera: "gap", Pre: 400 * time.Millisecond, Post: 2 * time.Second, Packets: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	got, err := runOp(t, wr, triggers(ms(15))) // [5, 65]: 0..19, gap, 23..49 skipped, 50..65
	if err != nil {
		t.Fatal(err)
	}
	want := append(cachedIDs(t, mc, "gap", cache.IDAt(ms(0)), cache.IDAt(ms(19))),
		cachedIDs(t, mc, "gap", cache.IDAt(ms(50)), cache.ID{MS: uint64(ms(65).UnixMilli()), Seq: ^uint64(0)})...)
	samePackets(t, got, want)
	if wr.Skipped() != 27 {
		t.Errorf("skipped %d, want 27 (23..49)", wr.Skipped())
	}
	if n := strings.Count(logs.String(), "gap in packet numbers"); n != 1 {
		t.Errorf("%d gap warnings, want 1:\n%s", n, logs.String())
	}
}

// Stopping keeps the last window: with Into, cancelling while a window
// waits for its end cuts it at the newest cached frame, and the clip
// writer finalises a playable clip from the window's keyframe to that
// frame, with every packet in between.
func TestWindowReplayIntoKeepsLastWindow(t *testing.T) {
	defer goleak.VerifyNone(t)
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{MaxAge: time.Minute})
	defer mc.Close()
	live := clip.Live(t, mc, "live", 3*time.Second)
	cl := chrysalis.New(mc, chrysalis.Options{})
	wr := &replay.Window{Client: cl, Camera: "live", Pre: time.Second, Post: time.Minute, Packets: true}
	clips := sink.Clips(t.TempDir(), sink.ClipOptions{})
	s := wr.Into(clips)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trig := time.Now()
	in := make(chan flow.Image, 1)
	in <- triggers(trig)[0]
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, in) }()
	// The window is pending (it waits for t+1 min) once its trigger is in.
	for wr.Triggers() < 1 {
		select {
		case err := <-done:
			t.Fatalf("returned early: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	live.Stop()
	st, err := mc.Stats(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want context.Canceled", err)
	}
	got := clips.Clips()
	if len(got) != 1 {
		t.Fatalf("%d clips, want 1: %+v", len(got), got)
	}
	c := got[0]
	first, err := mc.Range(context.Background(), "live", cache.IDAt(trig.Add(-time.Second)), cache.MaxID, 1)
	if err != nil {
		t.Fatal(err)
	}
	kf, err := mc.KeyframeAtOrBefore(context.Background(), "live", first[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.First != kf.ID || c.Last != st.Last {
		t.Fatalf("clip %v..%v, want %v (the window's keyframe) .. %v (the newest cached frame)", c.First, c.Last, kf.ID, st.Last)
	}
	if n := int64(len(cachedIDs(t, mc, "live", c.First, c.Last))); c.Frames != n || c.LastNumber-c.FirstNumber+1 != n {
		t.Fatalf("clip of %d frames (numbers %d..%d), the cache holds %d packets in it", c.Frames, c.FirstNumber, c.LastNumber, n)
	}
	if n := probePackets(t, c.Path); n != int(c.Frames) {
		t.Fatalf("ffprobe reads %d packets in %s, want %d", n, c.Path, c.Frames)
	}
	t.Logf("clip %s: %d frames, %v .. %v", filepath.Base(c.Path), c.Frames, c.First, c.Last)
}

// probePackets decodes a video file with ffprobe and returns its frame
// count; it fails the test when the file does not play.
func probePackets(t *testing.T, path string) int {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("ffprobe %s: %q", path, out)
	}
	return n
}
