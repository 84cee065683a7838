package ingest_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/ingest"
)

// TestFileOnePassIntoMemory: a file read once as fast as possible ends Run
// with nil after every packet is in the cache, in order, with the fields
// filled.
func TestFileOnePassIntoMemory(t *testing.T) {
	requireFFmpeg(t)
	for _, name := range []string{"clip720.mp4", "bframes720.mp4", "hevc720.mp4"} {
		t.Run(name, func(t *testing.T) {
			path := clip(name)
			want, wantKeys := probeCounts(t, path)
			m := cache.NewMemory(cache.Retention{})
			in, err := ingest.New(m, ingest.Config{Camera: "f", Input: path, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			r := start(t, in)
			if err := r.wait(t, 20*time.Second); err != nil {
				t.Fatalf("Run: %v", err)
			}
			st := in.Stats()
			pkts, err := m.Range(context.Background(), "f", cache.MinID, cache.MaxID, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: ffprobe %d packets/%d keyframes; stats %+v", name, want, wantKeys, st)
			if len(pkts) != want || st.Packets != int64(want) || st.Written != int64(want) || st.Keyframes != int64(wantKeys) {
				t.Fatalf("cache holds %d packets, stats %+v; want %d packets, %d keyframes", len(pkts), st, want, wantKeys)
			}
			checkIDs(t, pkts)
			cd, err := m.Codec(context.Background(), "f")
			if err != nil {
				t.Fatal(err)
			}
			if cd.Width != 1280 || cd.Height != 720 || len(cd.Extradata) == 0 || cd.LongName == "" || cd.PixFmt != "yuv420p" {
				t.Fatalf("codec %+v", cd)
			}
			p0 := pkts[0]
			if !p0.Keyframe || p0.FrameType != "I" || p0.Number != 1 || p0.KeyframeNumber != 1 || p0.CodecName != cd.Name ||
				p0.Width != 1280 || p0.TimeBase <= 0 || len(p0.Extradata) == 0 || p0.DeviceID != "f" {
				t.Fatalf("first packet %+v", p0)
			}
			last := pkts[len(pkts)-1]
			if last.Number != int64(want) || last.KeyframeNumber != int64(wantKeys) {
				t.Fatalf("last packet number %d keyframe %d", last.Number, last.KeyframeNumber)
			}
		})
	}
}

// TestRealtimeLoopFileIntoMemory: Realtime+Loop on a 1 s file for ~3 s
// delivers packets at about 25/s (not all at once), loops at least twice,
// and keeps ids, DTS and PTS increasing across the loop points.
func TestRealtimeLoopFileIntoMemory(t *testing.T) {
	requireFFmpeg(t)
	short := filepath.Join(t.TempDir(), "short.mp4")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", clip("clip720.mp4"),
		"-t", "1", "-c", "copy", short).CombinedOutput(); err != nil {
		t.Fatalf("cut clip: %v: %s", err, out)
	}
	perPass, keysPerPass := probeCounts(t, short)
	m := cache.NewMemory(cache.Retention{})
	in, err := ingest.New(m, ingest.Config{Camera: "rt", Input: short, Realtime: true, Loop: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	r := start(t, in)
	// Pacing is measured from the first packet (opening and probing the
	// file take longer on a busy machine), against the time that really
	// passed: a condition, then two looks at the count.
	waitFor(t, 10*time.Second, "the first packet", func() bool { return in.Stats().Packets >= 1 })
	first := time.Now()
	waitFor(t, 10*time.Second, "1 s of pacing", func() bool { return time.Since(first) >= time.Second })
	at1, e1 := in.Stats().Packets, time.Since(first)
	waitFor(t, 10*time.Second, "3 s of pacing", func() bool { return time.Since(first) >= 3*time.Second })
	at3, e3 := in.Stats().Packets, time.Since(first)
	if err, took := r.stop(t); err != nil || took > 2*time.Second {
		t.Fatalf("stop: %v after %v", err, took)
	}
	elapsed := time.Since(t0)
	st := in.Stats()
	t.Logf("pass = %d packets (%d keyframes); %v after the first packet: %d packets, after %v: %d; %v total; stats %+v",
		perPass, keysPerPass, e1.Round(time.Millisecond), at1, e3.Round(time.Millisecond), at3, elapsed.Round(time.Millisecond), st)
	// 25 fps paced: 1 + 25 a second after the first packet, give or take
	// a few (the reader may be a packet ahead, the look a packet late).
	for _, c := range []struct {
		n int64
		e time.Duration
	}{{at1, e1}, {at3, e3}} {
		if want := 1 + 25*c.e.Seconds(); float64(c.n) < want-10 || float64(c.n) > want+10 {
			t.Errorf("%v after the first packet: %d packets, want about %.0f (paced)", c.e, c.n, want)
		}
	}
	if st.Loops < 2 {
		t.Errorf("loops = %d, want >= 2", st.Loops)
	}
	pkts, err := m.Range(context.Background(), "rt", cache.MinID, cache.MaxID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(pkts)) != st.Packets {
		t.Fatalf("cache holds %d, stats %d", len(pkts), st.Packets)
	}
	checkIDs(t, pkts)
	keys := 0
	for i, p := range pkts {
		if p.Keyframe {
			keys++
		}
		if i == 0 {
			continue
		}
		q := pkts[i-1]
		if p.DTS <= q.DTS || p.PTS <= q.PTS || p.Timestamp < q.Timestamp || p.Number != q.Number+1 {
			t.Fatalf("packet %d: dts %d pts %d ts %d n %d after dts %d pts %d ts %d n %d", i,
				p.DTS, p.PTS, p.Timestamp, p.Number, q.DTS, q.PTS, q.Timestamp, q.Number)
		}
	}
	span := time.Duration(pkts[len(pkts)-1].Timestamp-pkts[0].Timestamp) * time.Millisecond
	if span < 2500*time.Millisecond {
		t.Errorf("wall-clock span of the packets %v, want about 3s", span)
	}
	if want := int(st.Loops+1) * keysPerPass; keys < want-keysPerPass || keys > want {
		t.Errorf("%d keyframes over %d passes", keys, st.Loops+1)
	}
}
