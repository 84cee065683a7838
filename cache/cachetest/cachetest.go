// Package cachetest is the conformance suite every cache.Cache passes: the
// in-process cache and the Redis cache run the same tests.
package cachetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
)

// Factory returns a cache applying ret. Caches from one Factory may share
// storage; the suite uses distinct camera ids.
type Factory func(t *testing.T, ret cache.Retention) cache.Cache

var camSeq atomic.Int64

func newCam(t *testing.T) string {
	return fmt.Sprintf("cam%d_%d", time.Now().UnixNano()%1e6, camSeq.Add(1))
}

// base is a fixed epoch ms for synthetic timestamps.
const base = int64(1_700_000_000_000)

// payload is packet i's Data: an Annex B access unit of one H.264 NAL
// unit, an IDR slice header (0x65) for a keyframe, else a non-IDR one
// (0x41), followed by "pkt-<i>". A cache that keeps only the bytes (the
// Redis cloud layout) finds the keyframes in them.
func payload(i int, key bool) []byte {
	h := byte(0x41)
	if key {
		h = 0x65
	}
	return append([]byte{0, 0, 0, 1, h}, fmt.Sprintf("pkt-%d", i)...)
}

// feed appends n packets 40 ms apart (25 fps) starting at t0 with a
// keyframe every gop packets; packet i's Data is payload(i).
func feed(t *testing.T, c cache.Cache, cam string, t0 int64, n, gop int) []cache.ID {
	t.Helper()
	ctx := context.Background()
	ids := make([]cache.ID, 0, n)
	for i := range n {
		p := &cache.Packet{Timestamp: t0 + int64(i)*40, Keyframe: i%gop == 0, Data: payload(i, i%gop == 0),
			PTS: int64(i) * 3600, DTS: int64(i) * 3600, TimeBase: 1.0 / 90000, Width: 64, Height: 48, Number: int64(i)}
		id, err := c.Append(ctx, cam, p)
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	return ids
}

// Caps says what a cache keeps beyond the packet bytes and ids.
type Caps struct {
	// BytesOnly: the cache stores each packet's Data and id only and finds
	// keyframes in the bytes (the Redis cloud layout). The suite then does
	// not check the packets' other fields, the keyframe index length in
	// Stats, or the SetCodec/Codec round trip.
	BytesOnly bool
}

// Run runs the suite on a cache that keeps every packet field.
func Run(t *testing.T, newCache Factory) { RunCaps(t, newCache, Caps{}) }

// RunCaps runs the suite, checking what caps says the cache keeps.
func RunCaps(t *testing.T, newCache Factory, caps Caps) {
	ctx := context.Background()
	full := !caps.BytesOnly

	t.Run("AppendRangeOrder", func(t *testing.T) {
		c := newCache(t, cache.Retention{})
		cam := newCam(t)
		ids := feed(t, c, cam, base, 30, 10)
		for i := 1; i < len(ids); i++ {
			if ids[i].Compare(ids[i-1]) <= 0 {
				t.Fatalf("ids not increasing: %v then %v", ids[i-1], ids[i])
			}
		}
		if ids[0].MS != uint64(base) {
			t.Fatalf("first id ms = %d, want the packet timestamp %d", ids[0].MS, base)
		}
		got, err := c.Range(ctx, cam, cache.MinID, cache.MaxID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 30 {
			t.Fatalf("range: %d packets, want 30", len(got))
		}
		for i, p := range got {
			if p.ID != ids[i] || !bytes.Equal(p.Data, payload(i, i%10 == 0)) || p.Keyframe != (i%10 == 0) || p.Timestamp != base+int64(i)*40 ||
				(full && (p.PTS != int64(i)*3600 || p.Width != 64 || p.Number != int64(i))) {
				t.Fatalf("packet %d round trip mismatch: %+v", i, p)
			}
		}
		part, err := c.Range(ctx, cam, ids[5], ids[9], 0)
		if err != nil || len(part) != 5 || part[0].ID != ids[5] {
			t.Fatalf("range [5,9]: %d packets, err %v", len(part), err)
		}
		lim, err := c.Range(ctx, cam, ids[5], cache.MaxID, 3)
		if err != nil || len(lim) != 3 {
			t.Fatalf("range count 3: %d packets, err %v", len(lim), err)
		}
		rev, err := c.RevRange(ctx, cam, cache.MaxID, cache.MinID, 2)
		if err != nil || len(rev) != 2 || rev[0].ID != ids[29] || rev[1].ID != ids[28] {
			t.Fatalf("revrange: %v err %v", rev, err)
		}
	})

	t.Run("SameMillisecond", func(t *testing.T) {
		c := newCache(t, cache.Retention{})
		cam := newCam(t)
		// ms base: a keyframe; ms base+40: P, keyframe, P. The index entry
		// for the second keyframe shares its ms with a P frame before it.
		pk := []struct {
			ms  int64
			key bool
		}{{base, true}, {base + 40, false}, {base + 40, true}, {base + 40, false}}
		var ids []cache.ID
		for i, x := range pk {
			id, err := c.Append(ctx, cam, &cache.Packet{Timestamp: x.ms, Keyframe: x.key, Data: payload(i, x.key)})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		for i := 1; i < len(ids); i++ {
			if ids[i].Compare(ids[i-1]) <= 0 {
				t.Fatalf("ids not increasing within one ms: %v", ids)
			}
		}
		kf, err := c.Keyframes(ctx, cam, cache.MinID, cache.MaxID, 0)
		if err != nil || len(kf) != 2 || !bytes.Equal(kf[0].Data, payload(0, true)) || !bytes.Equal(kf[1].Data, payload(2, true)) {
			t.Fatalf("keyframes sharing a ms with other packets: %+v err %v", kf, err)
		}
		p, err := c.KeyframeAtOrBefore(ctx, cam, ids[3])
		if err != nil || p.ID != ids[2] {
			t.Fatalf("keyframe at or before %v = %v err %v, want %v", ids[3], p.ID, err, ids[2])
		}
		p, err = c.KeyframeAtOrBefore(ctx, cam, ids[1])
		if err != nil || p.ID != ids[0] {
			t.Fatalf("keyframe at or before %v = %v err %v, want %v", ids[1], p.ID, err, ids[0])
		}
		// A clock step back still yields increasing ids.
		id, err := c.Append(ctx, cam, &cache.Packet{Timestamp: base - 1000, Data: payload(9, false)})
		if err != nil || id.Compare(ids[3]) <= 0 {
			t.Fatalf("clock step back: id %v after %v, err %v", id, ids[3], err)
		}
	})

	t.Run("KeyframeIndex", func(t *testing.T) {
		c := newCache(t, cache.Retention{})
		cam := newCam(t)
		ids := feed(t, c, cam, base, 50, 10)
		kf, err := c.Keyframes(ctx, cam, cache.MinID, cache.MaxID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(kf) != 5 {
			t.Fatalf("keyframes: %d, want 5", len(kf))
		}
		for i, p := range kf {
			if !p.Keyframe || p.ID != ids[i*10] {
				t.Fatalf("keyframe %d = %v (key %v), want %v", i, p.ID, p.Keyframe, ids[i*10])
			}
		}
		win, err := c.Keyframes(ctx, cam, ids[11], ids[35], 0)
		if err != nil || len(win) != 2 || win[0].ID != ids[20] || win[1].ID != ids[30] {
			t.Fatalf("keyframes in [11,35]: %v err %v", win, err)
		}
		st, err := c.Stats(ctx, cam)
		if err != nil || st.Frames != 50 || (full && st.Keyframes != 5) || st.First != ids[0] || st.Last != ids[49] {
			t.Fatalf("stats %+v err %v", st, err)
		}
		for _, tc := range []struct {
			at   cache.ID
			want int
		}{{ids[0], 0}, {ids[9], 0}, {ids[10], 10}, {ids[27], 20}, {cache.MaxID, 40}} {
			p, err := c.KeyframeAtOrBefore(ctx, cam, tc.at)
			if err != nil || p.ID != ids[tc.want] {
				t.Fatalf("keyframe at or before %v = %v err %v, want %v", tc.at, p.ID, err, ids[tc.want])
			}
		}
		_, err = c.KeyframeAtOrBefore(ctx, cam, cache.ID{MS: uint64(base - 1)})
		if !errors.Is(err, cache.ErrNotFound) {
			t.Fatalf("keyframe before the first packet: err %v, want ErrNotFound", err)
		}
	})

	t.Run("TrimMaxLen", func(t *testing.T) {
		c := newCache(t, cache.Retention{MaxLen: 25})
		cam := newCam(t)
		ids := feed(t, c, cam, base, 500, 10)
		st, err := c.Stats(ctx, cam)
		if err != nil {
			t.Fatal(err)
		}
		if st.Frames != 25 || st.Last != ids[499] || st.First != ids[475] {
			t.Fatalf("after MAXLEN 25: %+v", st)
		}
		kf, err := c.Keyframes(ctx, cam, cache.MinID, cache.MaxID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(kf) != 2 || kf[0].ID != ids[480] || kf[1].ID != ids[490] {
			t.Fatalf("keyframes after trim: %v", kf)
		}
		if full && (st.Keyframes < 2 || st.Keyframes > 3) {
			t.Fatalf("index length after trim = %d, want 2..3 (only live keyframes)", st.Keyframes)
		}
	})

	t.Run("TrimMaxAge", func(t *testing.T) {
		c := newCache(t, cache.Retention{MaxAge: 2 * time.Second})
		cam := newCam(t)
		ids := feed(t, c, cam, base, 500, 50) // 20 s of 25 fps
		st, err := c.Stats(ctx, cam)
		if err != nil {
			t.Fatal(err)
		}
		span := st.Last.MS - st.First.MS
		if st.Last != ids[499] || span > 2000 || span < 1900 {
			t.Fatalf("after MaxAge 2s: span %d ms, stats %+v", span, st)
		}
		if full && (st.Keyframes < 1 || st.Keyframes > 2) {
			t.Fatalf("index after age trim: %d entries", st.Keyframes)
		}
		p, err := c.KeyframeAtOrBefore(ctx, cam, cache.MaxID)
		if err != nil || p.ID != ids[450] {
			t.Fatalf("newest keyframe %v err %v, want %v", p.ID, err, ids[450])
		}
	})

	t.Run("ReadAfter", func(t *testing.T) {
		c := newCache(t, cache.Retention{})
		cam := newCam(t)
		ids := feed(t, c, cam, base, 5, 5)
		got, err := c.ReadAfter(ctx, cam, ids[1], 0, 0)
		if err != nil || len(got) != 3 || got[0].ID != ids[2] {
			t.Fatalf("read after ids[1]: %v err %v", got, err)
		}
		got, err = c.ReadAfter(ctx, cam, ids[4], 0, 0)
		if err != nil || len(got) != 0 {
			t.Fatalf("read after the last: %v err %v", got, err)
		}
		start := time.Now()
		got, err = c.ReadAfter(ctx, cam, ids[4], 0, 150*time.Millisecond)
		if err != nil || len(got) != 0 || time.Since(start) < 100*time.Millisecond {
			t.Fatalf("blocking read timeout: %v err %v after %v", got, err, time.Since(start))
		}
		errc := make(chan error, 1)
		go func() {
			time.Sleep(50 * time.Millisecond)
			_, err := c.Append(ctx, cam, &cache.Packet{Timestamp: base + 1000, Data: payload(5, false)})
			errc <- err
		}()
		got, err = c.ReadAfter(ctx, cam, ids[4], 10, 5*time.Second)
		if err != nil || len(got) != 1 || !bytes.Equal(got[0].Data, payload(5, false)) {
			t.Fatalf("blocking read wake: %v err %v", got, err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start = time.Now()
		_, err = c.ReadAfter(cctx, cam, cache.MaxID, 1, 10*time.Second)
		if time.Since(start) > 3*time.Second {
			t.Fatalf("blocking read ignored its context for %v (err %v)", time.Since(start), err)
		}
	})

	t.Run("CodecAndCameras", func(t *testing.T) {
		if !full {
			t.Skip("the cache keeps no codec parameters (they are in-band)")
		}
		c := newCache(t, cache.Retention{})
		cam := newCam(t)
		if _, err := c.Codec(ctx, cam); !errors.Is(err, cache.ErrUnknownCamera) {
			t.Fatalf("codec of unknown camera: %v", err)
		}
		want := cache.Codec{Name: "h264", LongName: "H.264", Width: 1280, Height: 720, PixFmt: "yuv420p", Extradata: []byte{1, 2, 3}}
		if err := c.SetCodec(ctx, cam, want); err != nil {
			t.Fatal(err)
		}
		got, err := c.Codec(ctx, cam)
		if err != nil || got.Name != want.Name || got.Width != 1280 || got.Height != 720 || !bytes.Equal(got.Extradata, want.Extradata) || got.PixFmt != "yuv420p" {
			t.Fatalf("codec round trip: %+v err %v", got, err)
		}
		if _, err := c.Stats(ctx, cam); !errors.Is(err, cache.ErrEmpty) {
			t.Fatalf("stats of a camera with codec but no packets: %v, want ErrEmpty", err)
		}
		cams, err := c.Cameras(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, x := range cams {
			found = found || x == cam
		}
		if !found {
			t.Fatalf("Cameras() = %v, missing %s", cams, cam)
		}
	})

	t.Run("UnknownCamera", func(t *testing.T) {
		c := newCache(t, cache.Retention{})
		cam := newCam(t)
		if _, err := c.Stats(ctx, cam); !errors.Is(err, cache.ErrUnknownCamera) {
			t.Fatalf("stats: %v", err)
		}
		if _, err := c.Range(ctx, cam, cache.MinID, cache.MaxID, 0); !errors.Is(err, cache.ErrUnknownCamera) {
			t.Fatalf("range: %v", err)
		}
		if _, err := c.KeyframeAtOrBefore(ctx, cam, cache.MaxID); !errors.Is(err, cache.ErrUnknownCamera) {
			t.Fatalf("keyframe: %v", err)
		}
		var ce *cache.CameraError
		if _, err := c.Stats(ctx, cam); !errors.As(err, &ce) || ce.Camera != cam {
			t.Fatalf("error does not carry the camera: %v", err)
		}
	})

	t.Run("CloseIdempotent", func(t *testing.T) {
		c := newCache(t, cache.Retention{})
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}
