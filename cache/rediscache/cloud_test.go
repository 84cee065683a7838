package rediscache_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/cachetest"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

// TestRedisCloudContract runs the conformance suite on the cloud layout,
// one stream per camera through a {camera} key.
func TestRedisCloudContract(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	cachetest.RunCaps(t, func(t *testing.T, r cache.Retention) cache.Cache {
		c, err := rediscache.Dial(context.Background(), rediscache.ConnOptions{URL: srv.URL(), Layout: rediscache.LayoutCloud,
			StreamKey: "cloud_{camera}"}, rediscache.Options{Retention: r})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}, cachetest.Caps{BytesOnly: true})
}

func dial(t *testing.T, url string, co rediscache.ConnOptions) *rediscache.Cache {
	t.Helper()
	co.URL = url
	c, err := rediscache.Dial(context.Background(), co, rediscache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCloudLayoutChoice: an unknown layout name fails Dial; a detecting
// cache reads an edge camera and a cloud stream side by side; a camera
// with keys of both layouts fails clearly; an empty cloud stream is
// ErrEmpty; Cameras lists the cloud stream by its key.
func TestCloudLayoutChoice(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	ctx := context.Background()
	if _, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: srv.URL(), Layout: "cloudy"}, rediscache.Options{}); !errors.Is(err, rediscache.ErrUnknownLayout) {
		t.Fatalf("Dial with layout cloudy: %v, want ErrUnknownLayout", err)
	}
	if _, err := rediscache.ParseLayout("Cloud"); err != nil {
		t.Fatalf("ParseLayout(Cloud): %v", err)
	}

	clip := testclip.LoadAnnexB(t, "clip720.mp4")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	clip.WriteCloud(t, rdb, "input_rtmp_stream", 1_700_000_000_000, 40)
	edge := testclip.Load(t, "clip720.mp4")
	edge.WriteRedis(t, rdb, "edgecam", 1_700_000_000_000, 40)

	c := dial(t, srv.URL(), rediscache.ConnOptions{})
	for cam, want := range map[string]rediscache.Layout{"any": rediscache.LayoutCloud, "edgecam": rediscache.LayoutEdge} {
		st, err := c.Stats(ctx, cam)
		if err != nil || st.Frames != 100 {
			t.Fatalf("%s: stats %+v err %v", cam, st, err)
		}
		if l, err := c.Layout(ctx, cam); err != nil || l != want {
			t.Fatalf("%s: layout %q err %v, want %q", cam, l, err, want)
		}
		cd, err := c.Codec(ctx, cam)
		if err != nil || cd.Name != "h264" || cd.Width != 1280 || cd.Height != 720 {
			t.Fatalf("%s: codec %+v err %v", cam, cd, err)
		}
	}
	cams, err := c.Cameras(ctx)
	if err != nil || !slices.Contains(cams, "input_rtmp_stream") || !slices.Contains(cams, "edgecam") {
		t.Fatalf("Cameras = %v err %v", cams, err)
	}
	if st, err := dial(t, srv.URL(), rediscache.ConnOptions{Layout: "Cloud"}).Stats(ctx, "any"); err != nil || st.Frames != 100 {
		t.Fatalf("layout spelled Cloud: %+v err %v", st, err)
	}
	if _, err := dial(t, srv.URL(), rediscache.ConnOptions{Layout: rediscache.LayoutEdge}).Stats(ctx, "any"); !errors.Is(err, cache.ErrUnknownCamera) {
		t.Fatalf("edge layout reading a cloud-only camera: %v, want ErrUnknownCamera", err)
	}

	// Both layouts' keys for one camera: no guess.
	both := dial(t, srv.URL(), rediscache.ConnOptions{StreamKey: "both_{camera}"})
	clip.WriteCloud(t, rdb, "both_edgecam", 1_700_000_000_000, 40)
	if _, err := both.Stats(ctx, "edgecam"); !errors.Is(err, rediscache.ErrAmbiguousLayout) {
		t.Fatalf("camera in both layouts: %v, want ErrAmbiguousLayout", err)
	}

	// An empty stream (created, then emptied) is known but empty.
	if err := rdb.Do(ctx, "XADD", "empty_cam1", "*", "frame", clip.Units[0]).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Do(ctx, "XTRIM", "empty_cam1", "MAXLEN", 0).Err(); err != nil {
		t.Fatal(err)
	}
	empty := dial(t, srv.URL(), rediscache.ConnOptions{StreamKey: "empty_{camera}"})
	if _, err := empty.Stats(ctx, "cam1"); !errors.Is(err, cache.ErrEmpty) {
		t.Fatalf("empty cloud stream: %v, want ErrEmpty", err)
	}
	if _, err := empty.KeyframeAtOrBefore(ctx, "cam1", cache.MaxID); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("keyframe in an empty cloud stream: %v, want ErrNotFound", err)
	}

	// A stream whose entries are not the cloud layout's.
	if err := rdb.Do(ctx, "XADD", "foreign_cam1", "*", "data", "x").Err(); err != nil {
		t.Fatal(err)
	}
	foreign := dial(t, srv.URL(), rediscache.ConnOptions{StreamKey: "foreign_{camera}", Layout: rediscache.LayoutCloud})
	if _, err := foreign.Range(ctx, "cam1", cache.MinID, cache.MaxID, 0); err == nil {
		t.Fatal("reading entries without a frame field: no error")
	}
	// The cloud layout takes Annex B only.
	if _, err := foreign.Append(ctx, "cam2", &cache.Packet{Data: []byte{0, 0, 0, 5, 0x65, 1, 2, 3, 4}}); !errors.Is(err, rediscache.ErrNotAnnexB) {
		t.Fatalf("AVCC append: %v, want ErrNotAnnexB", err)
	}
}

// TestCloudKeyframePaging: keyframe scans cross the script's 64-entry
// pages both ways, honour count, and Keyframes finds keyframes that share
// a millisecond with their neighbours.
func TestCloudKeyframePaging(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	const n, gop = 300, 100
	pipe := rdb.Pipeline()
	for i := range n {
		h := byte(0x41) // non-IDR slice
		if i%gop == 0 || i == 35 {
			h = 0x65 // IDR slice
		}
		// Three entries per millisecond.
		pipe.Do(ctx, "XADD", "page_cam", strconv.Itoa(1_700_000_000_000+i/3)+"-"+strconv.Itoa(i%3), "frame", []byte{0, 0, 0, 1, h, byte(i)})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	id := func(i int) cache.ID { return cache.ID{MS: uint64(1_700_000_000_000 + i/3), Seq: uint64(i % 3)} }
	c := dial(t, srv.URL(), rediscache.ConnOptions{Layout: rediscache.LayoutCloud, StreamKey: "page_{camera}"})
	kfs, err := c.Keyframes(ctx, "cam", cache.MinID, cache.MaxID, 0)
	if err != nil || len(kfs) != 4 || kfs[0].ID != id(0) || kfs[1].ID != id(35) || kfs[2].ID != id(100) || kfs[3].ID != id(200) {
		t.Fatalf("keyframes: %v err %v, want entries 0, 35, 100, 200", kfs, err)
	}
	if kfs, err := c.Keyframes(ctx, "cam", id(36), cache.MaxID, 1); err != nil || len(kfs) != 1 || kfs[0].ID != id(100) {
		t.Fatalf("first keyframe after entry 36: %v err %v", kfs, err)
	}
	// From entry 99 the first page ends at entry 36, <ms>-0: the next
	// starts at the previous millisecond's last entry, 35.
	for _, tc := range []struct{ at, want int }{{299, 200}, {199, 100}, {99, 35}, {34, 0}, {100, 100}} {
		p, err := c.KeyframeAtOrBefore(ctx, "cam", id(tc.at))
		if err != nil || p.ID != id(tc.want) || !p.Keyframe {
			t.Fatalf("keyframe at or before entry %d: %v err %v, want entry %d", tc.at, p.ID, err, tc.want)
		}
	}
}

// TestCloudKeyframeRule: the Lua scan and the Go reader agree on the
// NAL-type rule for access units without in-band parameter sets.
func TestCloudKeyframeRule(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	sc := []byte{0, 0, 0, 1}
	au := func(nals ...[]byte) []byte {
		var b []byte
		for _, n := range nals {
			b = append(append(b, sc...), n...)
		}
		return b
	}
	units := []struct {
		name string
		au   []byte
		key  bool
	}{
		{"h264 SEI then IDR", au([]byte{0x06, 0x05, 0x10}, []byte{0x65, 0x88}), true},
		{"h264 AUD then P", au([]byte{0x09, 0xf0}, []byte{0x41, 0x9a}), false},
		{"hevc IDR_W_RADL", au([]byte{0x26, 0x01, 0xaf}), true},
		{"hevc CRA", au([]byte{0x2a, 0x01, 0xaf}), true},
		{"hevc prefix SEI then TRAIL_R", au([]byte{0x4e, 0x01, 0x05}, []byte{0x02, 0x01, 0xd0}), false},
		{"hevc TRAIL_R", au([]byte{0x02, 0x01, 0xd0}), false},
	}
	for i, u := range units {
		if err := rdb.Do(ctx, "XADD", "rule_cam", strconv.Itoa(1_700_000_000_000+i)+"-0", "frame", u.au).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c := dial(t, srv.URL(), rediscache.ConnOptions{Layout: rediscache.LayoutCloud, StreamKey: "rule_{camera}"})
	all, err := c.Range(ctx, "cam", cache.MinID, cache.MaxID, 0)
	if err != nil || len(all) != len(units) {
		t.Fatalf("range: %d err %v", len(all), err)
	}
	kfs, err := c.Keyframes(ctx, "cam", cache.MinID, cache.MaxID, 0)
	if err != nil {
		t.Fatal(err)
	}
	lua := map[cache.ID]bool{}
	for _, p := range kfs {
		lua[p.ID] = true
	}
	for i, u := range units {
		if all[i].Keyframe != u.key || lua[all[i].ID] != u.key {
			t.Errorf("%s: Go says keyframe %v, Lua %v, want %v", u.name, all[i].Keyframe, lua[all[i].ID], u.key)
		}
	}
}
