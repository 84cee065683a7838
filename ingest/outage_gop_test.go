package ingest_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/ingest"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

// TestRedisOutageKeepsGOPsWhole: a live (Realtime, looped) camera with a
// keyframe every 10 packets is ingested with a 1 s Buffer into a
// persistent redis-server that is killed (SIGKILL) until 3 × Buffer of
// packets were read, then restarted on the same port. The cache must never
// hold a GOP without its keyframe: after every jump in Number (a drop) the
// first packet is a keyframe, so every run of contiguous Numbers starts at
// a keyframe.
func TestRedisOutageKeepsGOPsWhole(t *testing.T) {
	requireFFmpeg(t)
	const gop, fps = 10, 25
	path := gopClip(t, 4)
	srv := testredis.Start(t, testredis.Options{Persist: true})
	const cam = "gops"
	const buffer = time.Second
	rc := dialRedis(t, srv, cache.Retention{MaxAge: 5 * time.Minute})
	in, err := ingest.New(rc, ingest.Config{Camera: cam, Input: path, Realtime: true, Loop: true, Buffer: buffer,
		Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, in)
	waitFor(t, 10*time.Second, "37 packets written", func() bool { return in.Stats().Written >= 37 })
	srv.Kill()
	atKill := in.Stats()
	// 3 × Buffer of packets read while Redis is down.
	waitFor(t, 10*time.Second, "3 × Buffer of packets read", func() bool {
		return in.Stats().Packets >= atKill.Packets+3*int64(buffer.Seconds()*fps)
	})
	atRestart := in.Stats()
	srv.Restart()
	waitFor(t, 15*time.Second, "2 s of packets written after the restart", func() bool {
		return in.Stats().Written >= atRestart.Written+2*fps
	})
	st, all := r.stopAndRange(t, rc, cam)
	t.Logf("at kill %d read/%d written; at restart %d read/%d written/%d buffered/%d dropped; end %+v",
		atKill.Packets, atKill.Written, atRestart.Packets, atRestart.Written, atRestart.Buffered, atRestart.Dropped, st)
	if st.Written+st.Dropped != st.Packets || st.Dropped == 0 {
		t.Errorf("written %d + dropped %d != read %d, or nothing dropped", st.Written, st.Dropped, st.Packets)
	}

	xlen, _ := rc.Client().XLen(context.Background(), rediscache.QueueKey(cam)).Result()
	gaps := checkWholeGOPs(t, all)
	if gaps == 0 {
		t.Fatalf("no gap in %d packets (XLEN %d): the outage was not felt", len(all), xlen)
	}
	// The write in flight when the server was killed may have reached its
	// append-only file before the connection broke: the ingest counts it
	// dropped, the restarted server has it (the tail of a GOP). So the
	// cache holds Written packets, or one more.
	if int64(len(all)) != xlen || xlen < st.Written || xlen > st.Written+1 {
		t.Errorf("range %d, XLEN %d, written %d (want written or written+1)", len(all), xlen, st.Written)
	}

	// No reader decodes across the gaps: Past over the whole cache yields
	// one image per packet, each the picture ffmpeg decodes for that frame
	// of the clip (its GOPs are closed, so that is the GOP decoded alone).
	ref := testclip.Reference(t, path, "bgr24", 320, 240)
	const dur = 512 // the clip's frame interval in its 1/12800 time base
	ccam := chrysalis.New(rc, chrysalis.Options{}).Camera(cam, chrysalis.CameraOptions{})
	defer ccam.Close()
	n := 0
	for img, err := range ccam.Past(context.Background(), all[0].ID.Time(), all[len(all)-1].ID.Time()) {
		if err != nil {
			t.Fatal(err)
		}
		i := int(img.PTS/dur) % len(ref)
		if !bytes.Equal(img.Data, ref[i]) {
			t.Fatalf("image %d (packet %s, number %d) differs from ffmpeg's frame %d: %.1f dB", n, img.ID, img.Packet.Number, i,
				testclip.PSNR(img.Data, ref[i]))
		}
		n++
	}
	if cs := ccam.Stats(); n != len(all) || cs.Gaps != int64(gaps) || cs.Skipped != 0 {
		t.Fatalf("Past: %d images of %d packets, stats %+v (want %d gaps, nothing skipped)", n, len(all), cs, gaps)
	}
}
