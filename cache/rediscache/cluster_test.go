package rediscache_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/cachetest"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url   string
		kind  rediscache.Kind
		check func(u *rediscache.URL) bool
	}{
		{"redis://:pw@10.0.0.1:6380/2", rediscache.Single, func(u *rediscache.URL) bool {
			return u.Single.Addr == "10.0.0.1:6380" && u.Single.DB == 2 && u.Single.Password == "pw" && u.Single.MaxRetries == -1 &&
				u.Single.PoolSize == rediscache.DefaultPoolSize
		}},
		{"redis://a:6379?pool_size=7", rediscache.Single, func(u *rediscache.URL) bool { return u.Single.PoolSize == 7 }},
		{"redis://a:7000?addr=b:7001&pool_size=9", rediscache.Cluster, func(u *rediscache.URL) bool { return u.Cluster.PoolSize == 9 }},
		{"redis://u:pw@a:7000?addr=b:7001&addr=c:7002", rediscache.Cluster, func(u *rediscache.URL) bool {
			return strings.Join(u.Cluster.Addrs, " ") == "a:7000 b:7001 c:7002" && u.Cluster.Username == "u" && u.Cluster.Password == "pw" && u.Cluster.MaxRetries == -1 &&
				u.Cluster.PoolSize == rediscache.DefaultPoolSize
		}},
		{"rediss://a:7000/0?addr=a:7000", rediscache.Cluster, func(u *rediscache.URL) bool { return u.TLSConfig() != nil }},
		{"redis+sentinel://s1:26380,s2,[::1]:26381/cams", rediscache.Sentinel, func(u *rediscache.URL) bool {
			return strings.Join(u.Sentinel.SentinelAddrs, " ") == "s1:26380 s2:26379 [::1]:26381" && u.Sentinel.MasterName == "cams" && u.Sentinel.DB == 0 && u.TLSConfig() == nil &&
				u.Sentinel.PoolSize == rediscache.DefaultPoolSize
		}},
		{"rediss+sentinel://u:p%40ss@s1/cams/3?sentinel_username=su&sentinel_password=sp", rediscache.Sentinel, func(u *rediscache.URL) bool {
			s := u.Sentinel
			return s.Username == "u" && s.Password == "p@ss" && s.DB == 3 && s.SentinelUsername == "su" && s.SentinelPassword == "sp" && u.TLSConfig() != nil
		}},
	} {
		u, err := rediscache.ParseURL(tc.url)
		if err != nil || u.Kind != tc.kind || !tc.check(u) {
			t.Errorf("%s: %v, %+v", tc.url, err, u)
		}
	}
	for _, bad := range []string{
		"http://a:1", "redis://", "redis://a:7000/3?addr=b:7001", "redis+sentinel://s1:26379", "redis+sentinel://s1:26379/",
		"redis+sentinel://s1,,s2/m", "redis+sentinel://s1/m/x", "redis+sentinel://s1/m?master_name=x", "redis+sentinel://s1:99999/m",
		"redis+sentinel://:secret@s1/m?x=1", "redis://:secret@a:1?addr=b",
	} {
		_, err := rediscache.ParseURL(bad)
		if !errors.Is(err, rediscache.ErrBadURL) {
			t.Errorf("%s: %v, want ErrBadURL", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the password: %v", bad, err)
		}
	}
}

// TestClusterContract: the whole cache contract on a 3-master cluster
// named by its cluster URL: no command spans a camera's keys (CROSSSLOT).
func TestClusterContract(t *testing.T) {
	cl := testredis.StartCluster(t, 3)
	cachetest.Run(t, func(t *testing.T, r cache.Retention) cache.Cache {
		c, err := rediscache.Dial(context.Background(), rediscache.ConnOptions{URL: cl.URL()}, rediscache.Options{Retention: r})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Client().(*redis.ClusterClient); !ok {
			t.Fatalf("the cluster URL made a %T", c.Client())
		}
		t.Cleanup(func() { c.Close() })
		return c
	})
}

// TestClusterWriteOrders: on a cluster a camera's keys sit on different
// nodes and the writer's commands to them land in any order. Readers
// tolerate an index entry whose keyframe has not landed yet, and packets
// whose codec info has not landed yet (or was lost in a failover).
func TestClusterWriteOrders(t *testing.T) {
	cl := testredis.StartCluster(t, 3)
	ctx := context.Background()
	rc, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: cl.URL()}, rediscache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rdb := rc.Client()
	clip := testclip.Load(t, "clip720.mp4")
	const cam, t0 = "orders", int64(1_760_000_000_000)
	ids := clip.Append(t, rc, cam, t0, 40) // keyframes at packets 0 and 50
	// The codec info not written yet: drop it.
	if err := rdb.Del(ctx, rediscache.CodecKey(cam)).Err(); err != nil {
		t.Fatal(err)
	}
	// An index entry whose keyframe packet has not landed: the next
	// keyframe's, 40 ms after the last packet.
	next := t0 + 100*40
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: rediscache.IndexKey(cam), ID: cache.ID{MS: uint64(next)}.String(), Values: []any{"keyframe", "1"}}).Err(); err != nil {
		t.Fatal(err)
	}
	kf, err := rc.KeyframeAtOrBefore(ctx, cam, cache.MaxID)
	if err != nil || kf.ID != ids[50] {
		t.Fatalf("KeyframeAtOrBefore: %v %v, want packet 50 (%v)", kf.ID, err, ids[50])
	}
	kfs, err := rc.Keyframes(ctx, cam, cache.MinID, cache.MaxID, 0)
	if err != nil || len(kfs) != 2 || kfs[0].ID != ids[0] || kfs[1].ID != ids[50] {
		t.Fatalf("Keyframes: %d %v, want packets 0 and 50", len(kfs), err)
	}

	client := chrysalis.New(rc, chrysalis.Options{})
	camera := client.Camera(cam, chrysalis.CameraOptions{})
	defer camera.Close()
	p, err := camera.Probe(ctx)
	if err != nil || p.Frames != 100 || p.Codec != "h264" || p.Width != 1280 {
		t.Fatalf("Probe without codec info: %+v %v", p, err)
	}
	ref := testclip.Reference(t, "clip720.mp4", "bgr24", 0, 0)
	n := 0
	for img, err := range camera.Past(ctx, ids[45].Time(), ids[55].Time()) {
		if err != nil {
			t.Fatal(err)
		}
		if string(img.Data) != string(ref[45+n]) {
			t.Fatalf("Past without codec info: frame %d differs from ffmpeg's", 45+n)
		}
		img.Release()
		n++
	}
	if n != 11 {
		t.Fatalf("Past without codec info: %d frames, want 11", n)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	img, err := camera.WaitLatest(wctx)
	if err != nil || img.ID != ids[99] {
		t.Fatalf("WaitLatest: %v %v, want packet 99", img, err)
	}
	img.Release()

	// The keyframe lands (in its own millisecond's index entry): found.
	id, err := rc.Append(ctx, cam, &cache.Packet{Timestamp: next, Keyframe: true, Data: clip.Packets[0].Data, Number: 101,
		CodecName: clip.Codec, Width: clip.Width, Height: clip.Height, Extradata: clip.Extradata, TimeBase: clip.TimeBase})
	if err != nil {
		t.Fatal(err)
	}
	if kf, err := rc.KeyframeAtOrBefore(ctx, cam, cache.MaxID); err != nil || kf.ID != id {
		t.Fatalf("after the keyframe landed: %v %v, want %v", kf.ID, err, id)
	}
}
