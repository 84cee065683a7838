package record_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/chryscloud/chrysalis-go/record"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gop is the live test camera's keyframe interval (clip720: 50 packets at
// 25 fps).
const gop = 2 * time.Second

// eventually waits for cond, checking every 20 ms, failing after max.
func eventually(t *testing.T, max time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > max {
			t.Fatalf("%s: not within %v", what, max)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// liveCam plays clip720 live into a fresh memory cache as cam, with
// history of it already cached, and returns the cache and a client on it;
// the client, the live feed and the cache are closed when the test ends.
func liveCam(t *testing.T, cam string, history time.Duration) (*cache.Memory, *chrysalis.Client) {
	t.Helper()
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{})
	t.Cleanup(func() { mc.Close() })
	live := clip.Live(t, mc, cam, history)
	t.Cleanup(live.Stop)
	cl := chrysalis.New(mc, chrysalis.Options{})
	t.Cleanup(func() { cl.Close() })
	return mc, cl
}

// redisCam plays clip720 live into the Redis server srv as cam, with
// history of it already cached, and returns a client on that cache; the
// client, the feed and the cache connection are closed when the test ends.
func redisCam(t *testing.T, srv *testredis.Server, cam string, history time.Duration) *chrysalis.Client {
	t.Helper()
	clip := testclip.Load(t, "clip720.mp4")
	rc, err := rediscache.Dial(context.Background(), rediscache.ConnOptions{URL: srv.URL()}, rediscache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	live := clip.Live(t, rc, cam, history)
	t.Cleanup(live.Stop)
	cl := chrysalis.New(rc, chrysalis.Options{})
	t.Cleanup(func() { cl.Close() })
	return cl
}

// closeAndRead closes rec and returns cam's segments in dir, failing t
// unless there are want of them, with the packets of each.
func closeAndRead(t *testing.T, rec *record.Recorder, dir, cam string, want int) ([]record.SegmentInfo, [][]cache.Packet) {
	t.Helper()
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := record.List(dir, cam)
	if err != nil || len(segs) != want {
		t.Fatalf("segments %+v, %v: want %d", segs, err, want)
	}
	pkts := make([][]cache.Packet, len(segs))
	for i, s := range segs {
		if pkts[i], err = record.ReadSegment(s.Path); err != nil {
			t.Fatal(err)
		}
	}
	return segs, pkts
}

func stats(t *testing.T, r *record.Recorder, cam string) record.Stats {
	t.Helper()
	s, ok := r.Stats(cam)
	if !ok {
		t.Fatalf("no stats for %q", cam)
	}
	return s
}

type probePkt struct {
	Size  string `json:"size"`
	Flags string `json:"flags"`
}

// probePackets lists a file's video packets (size, keyframe) with ffprobe.
func probePackets(t *testing.T, path string) []probePkt {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=size,flags",
		"-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var po struct{ Packets []probePkt }
	if err := json.Unmarshal(out, &po); err != nil {
		t.Fatal(err)
	}
	return po.Packets
}

func segments(t *testing.T, dir, cam string) []record.Segment {
	t.Helper()
	segs, err := record.Segments(filepath.Join(dir, cam), cam)
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// Switching on at t0 records from the keyframe at or before t0 - PreRoll,
// and the segments together hold exactly the cache's packets from there on:
// none lost or repeated at a boundary, each segment starting at a keyframe.
func TestPreRollContinuousSegments(t *testing.T) {
	mc, cl := liveCam(t, "cam1", 12*time.Second)
	dir := t.TempDir()
	rec, err := record.New(cl, []string{"cam1"}, record.Options{Dir: dir, Segment: time.Second, PreRoll: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	ctx := context.Background()
	if s := stats(t, rec, "cam1"); s.Recording || s.Packets != 0 {
		t.Fatalf("recording before Start: %+v", s)
	}
	t0 := time.Now()
	if err := rec.Start(ctx, t0); err != nil {
		t.Fatal(err)
	}
	// The pre-roll (5 s, two and a half GOPs) is in the cache: two
	// segments at once, then one per GOP of live packets.
	eventually(t, 15*time.Second, "4 segments", func() bool { return stats(t, rec, "cam1").Segments >= 4 })
	if err := rec.Stop(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "switch-off", func() bool { return !stats(t, rec, "cam1").Recording })
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	st := stats(t, rec, "cam1")
	segs := segments(t, dir, "cam1")
	if len(segs) < 4 || int64(len(segs)) != st.Segments {
		t.Fatalf("%d segment files, %d segments counted", len(segs), st.Segments)
	}
	want, err := mc.KeyframeAtOrBefore(ctx, "cam1", cache.IDAt(t0.Add(-5*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if d := segs[0].Start.Sub(want.ID.Time()).Abs(); d > gop {
		t.Errorf("first segment starts at %v, keyframe before t0-5s at %v (%v apart, more than a GOP)",
			segs[0].Start, want.ID.Time(), d)
	}
	if segs[0].Start.After(t0.Add(-5 * time.Second)) {
		t.Errorf("first segment starts at %v, after t0-5s %v", segs[0].Start, t0.Add(-5*time.Second))
	}
	pkts, err := mc.Range(ctx, "cam1", cache.IDAt(segs[0].Start), cache.MaxID, 0)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for _, s := range segs {
		got := probePackets(t, s.Path)
		if len(got) == 0 {
			t.Fatalf("%s: no packets", s.Path)
		}
		if i >= len(pkts) || !pkts[i].ID.Time().Equal(s.Start) {
			t.Fatalf("%s starts at %v, but the next cached packet is %v", filepath.Base(s.Path), s.Start, pkts[min(i, len(pkts)-1)].ID)
		}
		for j, g := range got {
			p := pkts[i+j]
			if g.Size != strconv.Itoa(len(p.Data)) || (g.Flags[0] == 'K') != p.Keyframe {
				t.Fatalf("%s packet %d: size %s flags %s; cache packet %v: size %d key %v",
					filepath.Base(s.Path), j, g.Size, g.Flags, p.ID, len(p.Data), p.Keyframe)
			}
		}
		if !pkts[i].Keyframe {
			t.Errorf("%s does not start at a keyframe", s.Path)
		}
		i += len(got)
	}
	if int64(i) != st.Packets || st.Skipped != 0 {
		t.Errorf("segments hold %d packets; recorder wrote %d, skipped %d", i, st.Packets, st.Skipped)
	}
}

// Retention keeps at most Keep of segments, by age or by size, over a run
// that writes more.
func TestRetention(t *testing.T) {
	clip := testclip.Load(t, "clip720.mp4")
	for _, tc := range []struct {
		name string
		o    record.Options
	}{
		{"age", record.Options{KeepAge: 5 * time.Second}},
		{"bytes", record.Options{KeepBytes: 600_000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mc := cache.NewMemory(cache.Retention{})
			defer mc.Close()
			live := clip.Live(t, mc, "cam", 30*time.Second)
			defer live.Stop()
			cl := chrysalis.New(mc, chrysalis.Options{})
			defer cl.Close()
			dir := t.TempDir()
			o := tc.o
			o.Dir, o.Segment, o.PreRoll, o.Always = dir, time.Second, 30*time.Second, true
			rec, err := record.New(cl, []string{"cam"}, o)
			if err != nil {
				t.Fatal(err)
			}
			defer rec.Close()
			// 30 s of history: 15 segments, more than either bound keeps;
			// the 15th ends at the first live keyframe, so the open one is
			// recent.
			eventually(t, 15*time.Second, "15 segments", func() bool { return stats(t, rec, "cam").Segments >= 15 })
			before := time.Now()
			if err := rec.Close(); err != nil {
				t.Fatal(err)
			}
			st := stats(t, rec, "cam")
			segs := segments(t, dir, "cam")
			if st.Deleted == 0 || len(segs) == 0 || int64(len(segs)) != st.Segments-st.Deleted {
				t.Fatalf("%d segments, %d deleted, %d files", st.Segments, st.Deleted, len(segs))
			}
			var total int64
			for _, s := range segs {
				total += s.Size
				if o.KeepAge > 0 && s.Start.Before(before.Add(-o.KeepAge)) {
					t.Errorf("%s kept: older than %v", s.Path, o.KeepAge)
				}
			}
			if o.KeepBytes > 0 && total > o.KeepBytes {
				t.Errorf("%d bytes kept, over %d", total, o.KeepBytes)
			}
		})
	}
}

// Close mid-segment (SIGTERM) finalises the open segment; before that, the
// segment's temporary file already plays up to its last fragment (SIGKILL).
func TestCloseMidSegment(t *testing.T) {
	_, cl := liveCam(t, "cam", 3*time.Second)
	dir := t.TempDir()
	rec, err := record.New(cl, []string{"cam"}, record.Options{Dir: dir, Always: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	// Past two GOPs and into the third: the open fragment holds packets.
	eventually(t, 10*time.Second, "130 packets", func() bool { return stats(t, rec, "cam").Packets >= 130 })
	parts, _ := filepath.Glob(filepath.Join(dir, "cam", ".cam_*.mp4.*.part"))
	if len(parts) != 1 {
		t.Fatalf("open segments %v", parts)
	}
	written := stats(t, rec, "cam").Packets
	data, err := os.ReadFile(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	killed := filepath.Join(t.TempDir(), "killed.mp4")
	if err := os.WriteFile(killed, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if n := int64(len(probePackets(t, killed))); n < written-50-1 || n > written {
		t.Errorf("the killed segment plays %d packets of %d written; want a loss of at most one GOP", n, written)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	st := stats(t, rec, "cam")
	segs := segments(t, dir, "cam")
	if len(segs) != 1 || st.Segments != 1 {
		t.Fatalf("segments %v, counted %d", segs, st.Segments)
	}
	if info := testclip.Probe(t, segs[0].Path); int64(info.Frames) != st.Packets {
		t.Errorf("closed segment plays %d frames, %d written", info.Frames, st.Packets)
	}
	if parts, _ := filepath.Glob(filepath.Join(dir, "cam", ".*.part")); len(parts) != 0 {
		t.Errorf("temporary files left: %v", parts)
	}
}

// The edge proxy's switch: setting store in last_access_time_<cam> with
// HSET starts and stops a running recorder within a second, and the API
// writes it.
func TestRedisStoreSwitch(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	ctx := context.Background()
	cl := redisCam(t, srv, "cam", 6*time.Second)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	key := rediscache.AccessKey("cam")
	if err := rdb.HSet(ctx, key, "store", "0").Err(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rec, err := record.New(cl, []string{"cam"}, record.Options{Dir: dir, Segment: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()

	if err := rdb.HSet(ctx, key, "store", "1").Err(); err != nil {
		t.Fatal(err)
	}
	d := eventually(t, 15*time.Second, "store=1 starts", func() bool { return stats(t, rec, "cam").Packets > 0 })
	if d > time.Second {
		t.Errorf("store=1 started recording after %v", d)
	}
	if err := rdb.HSet(ctx, key, "store", "0").Err(); err != nil {
		t.Fatal(err)
	}
	d = eventually(t, 15*time.Second, "store=0 stops", func() bool { return stats(t, rec, "cam").Segments == 1 })
	if d > time.Second {
		t.Errorf("store=0 finished the segment after %v", d)
	}
	if segs := segments(t, dir, "cam"); len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}

	// The API writes the switch.
	if err := rec.StartCamera(ctx, "cam", time.Now()); err != nil {
		t.Fatal(err)
	}
	if v := rdb.HGet(ctx, key, "store").Val(); v != "1" {
		t.Errorf("after StartCamera store = %q", v)
	}
	if err := rec.StopCamera(ctx, "cam", time.Now()); err != nil {
		t.Fatal(err)
	}
	if v := rdb.HGet(ctx, key, "store").Val(); v != "0" {
		t.Errorf("after StopCamera store = %q", v)
	}
	if err := rec.StartCamera(ctx, "nope", time.Now()); err == nil {
		t.Error("StartCamera of an unknown camera: no error")
	}
}

// A gap in the packets' Number (a lost packet) ends the segment; the next
// one starts at the next keyframe, skipping the undecodable packets.
func TestGapEndsSegment(t *testing.T) {
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{})
	defer mc.Close()
	ctx := context.Background()
	if err := mc.SetCodec(ctx, "cam", clip.CacheCodec()); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-10 * time.Second).UnixMilli()
	for i := range 2 * len(clip.Packets) { // 200 packets, keyframes at 0, 50, 100, 150
		if i == 69 {
			continue // lost: packets 70..99 cannot be decoded
		}
		p := clip.Packets[i%len(clip.Packets)]
		var extra []byte
		if p.Key {
			extra = clip.Extradata
		}
		if _, err := mc.Append(ctx, "cam", &cache.Packet{Timestamp: t0 + int64(i)*40, Keyframe: p.Key, Data: p.Data,
			PTS: p.PTS, DTS: p.DTS, TimeBase: clip.TimeBase, Width: clip.Width, Height: clip.Height, CodecName: clip.Codec,
			PixFmt: clip.PixFmt, Extradata: extra, Number: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	cl := chrysalis.New(mc, chrysalis.Options{})
	defer cl.Close()
	dir := t.TempDir()
	rec, err := record.New(cl, []string{"cam"}, record.Options{Dir: dir, Always: true, PreRoll: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	eventually(t, 15*time.Second, "199 packets read", func() bool {
		s := stats(t, rec, "cam")
		return s.Packets+s.Skipped == 199
	})
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segments(t, dir, "cam")
	if len(segs) != 2 {
		t.Fatalf("segments %v, want 2", segs)
	}
	if n := len(probePackets(t, segs[0].Path)); n != 69 {
		t.Errorf("first segment: %d packets, want the 69 before the gap", n)
	}
	if want := time.UnixMilli(t0 + 100*40).UTC(); !segs[1].Start.Equal(want) {
		t.Errorf("second segment starts at %v, want the keyframe after the gap at %v", segs[1].Start, want)
	}
	if n := len(probePackets(t, segs[1].Path)); n != 100 {
		t.Errorf("second segment: %d packets, want 100", n)
	}
	if s := stats(t, rec, "cam"); s.Skipped != 30 {
		t.Errorf("skipped %d, want 30", s.Skipped)
	}
}

// Several cameras in one recorder; Stop at t records through t + PostRoll
// on each.
func TestPostRollTwoCameras(t *testing.T) {
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{})
	defer mc.Close()
	cams := []string{"a", "b"}
	for _, c := range cams {
		live := clip.Live(t, mc, c, 3*time.Second)
		defer live.Stop()
	}
	cl := chrysalis.New(mc, chrysalis.Options{})
	defer cl.Close()
	dir := t.TempDir()
	const post = time.Second
	rec, err := record.New(cl, cams, record.Options{Dir: dir, PostRoll: post, PreRoll: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	ctx := context.Background()
	if err := rec.Start(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "recording", func() bool {
		return stats(t, rec, "a").Packets > 10 && stats(t, rec, "b").Packets > 10
	})
	tStop := time.Now()
	if err := rec.Stop(ctx, tStop); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "post-roll over", func() bool {
		return !stats(t, rec, "a").Recording && !stats(t, rec, "b").Recording
	})
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	end := tStop.Add(post)
	for _, c := range cams {
		segs := segments(t, dir, c)
		if len(segs) != 1 {
			t.Fatalf("camera %s: segments %v", c, segs)
		}
		n := len(probePackets(t, segs[0].Path))
		pkts, err := mc.Range(ctx, c, cache.IDAt(segs[0].Start), cache.MaxID, int64(n))
		if err != nil || len(pkts) != n {
			t.Fatalf("camera %s: %d cached packets, %v", c, len(pkts), err)
		}
		last := pkts[n-1].ID.Time()
		if last.After(end) || last.Before(end.Add(-2*testclip.LiveStep)) {
			t.Errorf("camera %s: last packet at %v; post-roll ends at %v", c, last, end)
		}
	}
}

// Switched off and on again within the pre-roll: the new segment resumes
// at the keyframe at or before the first packet not recorded, so no packet
// between the two recordings is lost (up to one GOP is repeated).
func TestOffOnWithinPreRoll(t *testing.T) {
	mc, cl := liveCam(t, "cam", 3*time.Second)
	dir := t.TempDir()
	rec, err := record.New(cl, []string{"cam"}, record.Options{Dir: dir, Segment: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	ctx := context.Background()
	if err := rec.Start(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "recording", func() bool { return stats(t, rec, "cam").Packets > 80 })
	if err := rec.Stop(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "switch-off", func() bool { return !stats(t, rec, "cam").Recording })
	n := stats(t, rec, "cam").Packets
	first, err := record.List(dir, "cam")
	if err != nil || len(first) != 1 {
		t.Fatalf("segments %+v, %v", first, err)
	}
	// Ten packets arrive while off; the pre-roll (5 s) reaches back into
	// the first segment.
	eventually(t, 15*time.Second, "packets while off", func() bool {
		p, _ := mc.Range(ctx, "cam", first[0].Last.Next(), cache.MaxID, 0)
		return len(p) >= 10
	})
	if err := rec.Start(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "second segment", func() bool { return stats(t, rec, "cam").Segments == 1 && stats(t, rec, "cam").Packets > n+10 })
	_, pkts := closeAndRead(t, rec, dir, "cam", 2)
	a, b := pkts[0], pkts[1]
	if !b[0].Keyframe || b[0].ID.Compare(a[len(a)-1].ID) > 0 {
		t.Fatalf("second segment starts at %v (key %v), after the first one's last packet %v: packets lost",
			b[0].ID, b[0].Keyframe, a[len(a)-1].ID)
	}
	cached, err := mc.Range(ctx, "cam", a[0].ID, b[len(b)-1].ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[cache.ID]bool{}
	for _, p := range append(a, b...) {
		seen[p.ID] = true
	}
	for _, p := range cached {
		if !seen[p.ID] {
			t.Fatalf("cached packet %v is in no segment", p.ID)
		}
	}
	if rep := len(a) + len(b) - len(cached); rep >= 50 {
		t.Errorf("%d packets repeated; want less than a GOP", rep)
	}
}

// With keyspace notifications on (notify-keyspace-events Kh), a change of
// the store field is followed at once, not at the next poll (an hour here).
func TestRedisSwitchNotifications(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	if err := rdb.ConfigSet(ctx, "notify-keyspace-events", "Kh").Err(); err != nil {
		t.Fatal(err)
	}
	cl := redisCam(t, srv, "cam", 3*time.Second)
	key := rediscache.AccessKey("cam")
	if err := rdb.HSet(ctx, key, "store", "0").Err(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rec, err := record.New(cl, []string{"cam"}, record.Options{Dir: dir, Segment: time.Hour, Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	// The subscription is up once Redis counts it.
	eventually(t, 15*time.Second, "subscribed", func() bool { return rdb.PubSubNumPat(ctx).Val() == 1 })
	if err := rdb.HSet(ctx, key, "store", "1").Err(); err != nil {
		t.Fatal(err)
	}
	on := eventually(t, 15*time.Second, "store=1 starts", func() bool { return stats(t, rec, "cam").Packets > 0 })
	if err := rdb.HSet(ctx, key, "store", "0").Err(); err != nil {
		t.Fatal(err)
	}
	off := eventually(t, 15*time.Second, "store=0 stops", func() bool { return stats(t, rec, "cam").Segments == 1 })
	t.Logf("with keyspace notifications: on after %v, segment finalised after %v", on, off)
	if on > 300*time.Millisecond || off > 300*time.Millisecond {
		t.Errorf("on after %v, off after %v; want at once", on, off)
	}
}

// Switched off and on again before the next keyframe, the recorder resumes
// at the keyframe the first segment starts at: the second segment gets a
// name of its own and the first one is kept, not replaced.
func TestOffOnSameKeyframe(t *testing.T) {
	mc, cl := liveCam(t, "cam", 0)
	dir := t.TempDir()
	rec, err := record.New(cl, []string{"cam"}, record.Options{Dir: dir, Segment: time.Hour, PreRoll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	ctx := context.Background()
	// Just after a keyframe, so that off and on fall in its GOP (2 s).
	eventually(t, 10*time.Second, "a fresh keyframe", func() bool {
		p, err := mc.RevRange(ctx, "cam", cache.MaxID, cache.MinID, 1)
		return err == nil && len(p) == 1 && p[0].Keyframe && time.Since(time.UnixMilli(int64(p[0].ID.MS))) < 300*time.Millisecond
	})
	if err := rec.Start(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "recording", func() bool { return stats(t, rec, "cam").Packets >= 3 })
	if err := rec.Stop(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "switch-off", func() bool { return !stats(t, rec, "cam").Recording })
	first, err := record.List(dir, "cam")
	if err != nil || len(first) != 1 {
		t.Fatalf("segments %+v, %v", first, err)
	}
	n := stats(t, rec, "cam").Packets
	if err := rec.Start(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "recording again", func() bool { return stats(t, rec, "cam").Packets > n+3 })
	segs, pkts := closeAndRead(t, rec, dir, "cam", 2)
	a, b := pkts[0], pkts[1]
	if segs[0].Path != first[0].Path || len(a) != int(first[0].Frames) {
		t.Fatalf("first segment %s now has %d packets, was %s with %d", segs[0].Path, len(a), first[0].Path, first[0].Frames)
	}
	t.Logf("first %d packets from %v, second %d from %v", len(a), a[0].ID, len(b), b[0].ID)
}
