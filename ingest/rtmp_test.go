package ingest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/ingest"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/chryscloud/chrysalis-go/internal/testx"
)

func dialRedis(t testing.TB, srv *testredis.Server, ret cache.Retention) *rediscache.Cache {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: srv.URL()}, rediscache.Options{Retention: ret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	return rc
}

// settle waits until XLEN stops changing (or reaches want) and returns it.
func settle(t testing.TB, rc *rediscache.Cache, cam string, want int64) int64 {
	t.Helper()
	ctx := context.Background()
	var last int64 = -1
	stable := time.Now()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		n, err := rc.Client().XLen(ctx, rediscache.QueueKey(cam)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n != last {
			last, stable = n, time.Now()
		}
		if n == want || time.Since(stable) > 2*time.Second {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
	return last
}

// TestRTMPPushIntoRedis: a camera (ffmpeg -re ... -f flv) pushes RTMP to a
// listening Ingest writing into Redis. Every packet arrives, ids increase,
// the keyframe index resolves to the keyframes, the codec info decodes the
// first keyframe; then the pusher leaving makes the Ingest listen again and
// a second push is received too. The cache then holds both pushes' packets
// byte for byte.
func TestRTMPPushIntoRedis(t *testing.T) {
	requireFFmpeg(t)
	srv := testredis.Start(t, testredis.Options{})
	rc := dialRedis(t, srv, cache.Retention{MaxAge: 5 * time.Minute})
	path := clip("clip720.mp4")
	want, wantKeys := probeCounts(t, path)
	const cam = "cam1"
	url := fmt.Sprintf("rtmp://127.0.0.1:%d/live/cam", testx.FreePort(t))
	in, err := ingest.New(rc, ingest.Config{Camera: cam, Input: url, Listen: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, in)
	ctx := context.Background()
	rdb := rc.Client()

	push(t, ctx, path, url)
	n := settle(t, rc, cam, int64(want))
	st := in.Stats()
	t.Logf("first push: XLEN %d, ffprobe %d packets/%d keyframes, stats %+v", n, want, wantKeys, st)
	if n != int64(want) {
		t.Fatalf("XLEN %s = %d, want %d (ffprobe)", rediscache.QueueKey(cam), n, want)
	}

	// Ids strictly increase.
	msgs, err := rdb.XRange(ctx, rediscache.QueueKey(cam), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []cache.ID
	queueKeys := 0
	for i, m := range msgs {
		id, err := cache.ParseID(m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && id.Compare(ids[i-1]) <= 0 {
			t.Fatalf("entry %d id %v not after %v", i, id, ids[i-1])
		}
		ids = append(ids, id)
		if m.Values["is_keyframe"] == "1" {
			queueKeys++
		}
	}
	if msgs[0].Values["is_keyframe"] != "1" {
		t.Fatalf("first entry is not a keyframe")
	}

	// Every index entry resolves to a keyframe: the first queue entry at
	// or after the index id's millisecond with is_keyframe "1".
	idx, err := rdb.XRange(ctx, rediscache.IndexKey(cam), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(idx) != wantKeys || queueKeys != wantKeys {
		t.Fatalf("index has %d entries, queue %d keyframes, ffprobe %d", len(idx), queueKeys, wantKeys)
	}
	var firstKey []byte
	var prevKey string
	for _, e := range idx {
		iid, _ := cache.ParseID(e.ID)
		cand, err := rdb.XRangeN(ctx, rediscache.QueueKey(cam), cache.ID{MS: iid.MS}.String(), "+", 16).Result()
		if err != nil {
			t.Fatal(err)
		}
		found := ""
		for _, c := range cand {
			if c.Values["is_keyframe"] == "1" {
				found = c.ID
				break
			}
		}
		if found == "" || found == prevKey {
			t.Fatalf("index entry %s resolves to no (new) keyframe", e.ID)
		}
		prevKey = found
	}
	kp, err := rc.Keyframes(ctx, cam, cache.MinID, cache.MaxID, 0)
	if err != nil || len(kp) != wantKeys {
		t.Fatalf("Keyframes: %d, %v", len(kp), err)
	}
	firstKey = kp[0].Data

	// The codec info decodes and its extradata lets a decoder decode the
	// first keyframe (AVCC packets cannot be decoded without it).
	cd, err := rc.Codec(ctx, cam)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("codec: %s (%s) %dx%d %s, %d bytes extradata", cd.Name, cd.LongName, cd.Width, cd.Height, cd.PixFmt, len(cd.Extradata))
	if cd.Name != "h264" || cd.Width != 1280 || cd.Height != 720 || len(cd.Extradata) == 0 {
		t.Fatalf("codec %+v", cd)
	}
	w, h, err := decodeFirstKeyframe(cd, firstKey)
	if err != nil || w != 1280 || h != 720 {
		t.Fatalf("decode first keyframe with the cached extradata: %dx%d, %v", w, h, err)
	}
	noExtra := cd
	noExtra.Extradata = nil
	if _, _, err := decodeFirstKeyframe(noExtra, firstKey); err == nil {
		t.Logf("note: keyframe also decodes without extradata (in-band SPS/PPS)")
	} else {
		t.Logf("control: without extradata the keyframe does not decode (%v)", err)
	}

	// The pusher left: the Ingest listens again instead of exiting.
	waitFor(t, 5*time.Second, "a reconnect after the pusher left", func() bool { return in.Stats().Reconnects >= 1 })
	select {
	case err := <-r.done:
		t.Fatalf("Run returned after the pusher left: %v", err)
	default:
	}
	push(t, ctx, path, url)
	n = settle(t, rc, cam, int64(2*want))
	st = in.Stats()
	t.Logf("second push: XLEN %d, stats %+v", n, st)
	if n != int64(2*want) || st.Packets != int64(2*want) || st.Written != int64(2*want) {
		t.Fatalf("after the second push XLEN %d, stats %+v, want %d", n, st, 2*want)
	}
	if st.CodecWrites != 1 {
		t.Errorf("codec written %d times; the second push had the same parameters", st.CodecWrites)
	}
	// Byte for byte: the two pushes' packets, as ffprobe reads them from
	// the clip (FLV carries the MP4's AVCC packets unchanged).
	src := testclip.Load(t, "clip720.mp4").Data()
	testclip.SamePackets(t, "two pushes", cachedData(t, rc, cam), concat(src, src))
	if err, took := r.stop(t); err != nil || took > 2*time.Second {
		t.Fatalf("stop: %v after %v", err, took)
	}
}
