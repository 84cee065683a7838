package chrysalis_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/pb"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/chryscloud/chrysalis-go/mp4"
	"github.com/chryscloud/chrysalis-go/sink"
)

// burstLoops repeats the B-frame clip into a 500-packet camera.
const burstLoops = 5

// burstPacket is packet i of the clip repeated burstLoops times, with pts
// and dts shifted per loop so the stream's clock keeps increasing, and the
// frame's display index in the clip's reference decode.
type burstPacket struct {
	testclip.Packet
	number  int64
	display int // index into the clip's reference frames
}

func burstPackets(t *testing.T, c *testclip.Clip) []burstPacket {
	t.Helper()
	pts := make([]int64, len(c.Packets))
	for i, p := range c.Packets {
		pts[i] = p.PTS
	}
	slices.Sort(pts)
	dur := pts[1] - pts[0]
	span := pts[len(pts)-1] - pts[0] + dur
	var out []burstPacket
	for l := range burstLoops {
		for _, p := range c.Packets {
			q := p
			q.PTS += int64(l) * span
			q.DTS += int64(l) * span
			out = append(out, burstPacket{Packet: q, number: int64(len(out)), display: int((p.PTS - pts[0]) / dur)})
		}
	}
	return out
}

// xaddBurst writes the packets into Redis in the edge proxy's layout in one
// pipeline, as an unpaced writer sharing no code with the ingest would:
// with id "*" (server-assigned) many packets land in each millisecond, with
// "<ms>-*" all of them do.
func xaddBurst(t *testing.T, rdb *redis.Client, cam, id string, c *testclip.Clip, pkts []burstPacket) {
	t.Helper()
	ctx := context.Background()
	cd, _ := proto.Marshal(&pb.VideoCodec{Name: c.Codec, Width: int32(c.Width), Height: int32(c.Height), PixFmt: c.PixFmt,
		Extradata: c.Extradata, ExtradataSize: int32(len(c.Extradata))})
	pipe := rdb.Pipeline()
	pipe.Set(ctx, "codec_video_info"+cam, cd, 0)
	for _, p := range pkts {
		vf, _ := proto.Marshal(&pb.VideoFrame{Width: int64(c.Width), Height: int64(c.Height), Data: p.Data, IsKeyframe: p.Key,
			Pts: p.PTS, Dts: p.DTS, TimeBase: c.TimeBase, DeviceId: cam, Packet: p.number, CodecName: c.Codec, PixFmt: c.PixFmt})
		key := "0"
		if p.Key {
			key = "1"
			pipe.Do(ctx, "XADD", "memory_iframe_list_"+cam, id, "keyframe", 1)
		}
		pipe.Do(ctx, "XADD", "in_memory_queue_"+cam, id, "data", vf, "is_keyframe", key)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// appendBurst writes the packets into any cache, all stamped with one
// millisecond.
func appendBurst(t *testing.T, cc cache.Cache, cam string, c *testclip.Clip, pkts []burstPacket) {
	t.Helper()
	ctx := context.Background()
	if err := cc.SetCodec(ctx, cam, c.CacheCodec()); err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		if _, err := cc.Append(ctx, cam, &cache.Packet{Timestamp: t0, Keyframe: p.Key, Data: p.Data, PTS: p.PTS, DTS: p.DTS,
			TimeBase: c.TimeBase, Width: c.Width, Height: c.Height, CodecName: c.Codec, PixFmt: c.PixFmt, Number: p.number}); err != nil {
			t.Fatal(err)
		}
	}
}

// A cache whose 500 packets (with B-frames) share a few milliseconds: Past
// over Probe's window yields every packet's frame once, in display order,
// each the right picture; Screenshot at every keyframe's millisecond
// returns the newest keyframe of that millisecond; KeyframesOnly yields
// every keyframe.
func TestBurstCache(t *testing.T) {
	clip := testclip.Load(t, "bframes720.mp4")
	ref := testclip.Reference(t, "bframes720.mp4", "bgr24", 0, 0)
	pkts := burstPackets(t, clip)
	srv := testredis.Start(t, testredis.Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		dial func(t *testing.T) *chrysalis.Client
	}{
		{"redis-xadd", func(t *testing.T) *chrysalis.Client {
			cl, err := chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: srv.URL()}, chrysalis.Options{})
			if err != nil {
				t.Fatal(err)
			}
			xaddBurst(t, cl.Cache().(*rediscache.Cache).Client().(*redis.Client), "burst", "*", clip, pkts)
			return cl
		}},
		{"redis-one-ms", func(t *testing.T) *chrysalis.Client {
			cl, err := chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: srv.URL()}, chrysalis.Options{})
			if err != nil {
				t.Fatal(err)
			}
			// The same camera name in its own Redis database.
			if err := cl.Cache().(*rediscache.Cache).Client().(*redis.Client).FlushDB(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			xaddBurst(t, cl.Cache().(*rediscache.Cache).Client().(*redis.Client), "burst", strconv.FormatInt(t0, 10)+"-*", clip, pkts)
			return cl
		}},
		{"memory-one-ms", func(t *testing.T) *chrysalis.Client {
			mc := cache.NewMemory(cache.Retention{})
			appendBurst(t, mc, "burst", clip, pkts)
			return chrysalis.New(mc, chrysalis.Options{})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := tc.dial(t)
			defer cl.Close()
			cam := cl.Camera("burst", chrysalis.CameraOptions{})
			defer cam.Close()
			p, err := cam.Probe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if p.Frames != int64(len(pkts)) {
				t.Fatalf("probe: %d frames, want %d", p.Frames, len(pkts))
			}
			all, err := cl.Cache().Range(ctx, "burst", cache.MinID, cache.MaxID, 0)
			if err != nil {
				t.Fatal(err)
			}
			shared := 0
			for i := 1; i < len(all); i++ {
				if all[i].ID.MS == all[i-1].ID.MS {
					shared++
				}
			}
			t.Logf("%d packets over %d ms, %d share a millisecond with the one before", len(all), p.EndMS-p.StartMS, shared)
			if shared < len(all)/2 {
				t.Fatalf("only %d of %d packets share a millisecond: not a burst cache", shared, len(all))
			}

			got := collect(t, cam, p.Start(), p.End())
			if len(got) != len(pkts) {
				t.Fatalf("Past(probe.Start, probe.End): %d frames, want %d", len(got), len(pkts))
			}
			seen := map[cache.ID]bool{}
			for i, img := range got {
				if seen[img.ID] {
					t.Fatalf("frame %d: packet %s yielded twice", i, img.ID)
				}
				seen[img.ID] = true
				if i > 0 && img.PTS <= got[i-1].PTS {
					t.Fatalf("frame %d: pts %d after %d: not display order", i, img.PTS, got[i-1].PTS)
				}
				want := ref[i%len(ref)]
				if !bytes.Equal(img.Data, want) {
					t.Fatalf("frame %d (packet %s) differs from ffmpeg's frame %d: %.1f dB", i, img.ID, i%len(ref), testclip.PSNR(img.Data, want))
				}
			}

			var kfs []cache.Packet
			for _, q := range all {
				if q.Keyframe {
					kfs = append(kfs, q)
				}
			}
			if len(kfs) != 2*burstLoops {
				t.Fatalf("%d keyframes in the cache, want %d", len(kfs), 2*burstLoops)
			}
			for _, kf := range kfs {
				// The newest keyframe of the millisecond (usually kf itself).
				want := kf
				for _, o := range kfs {
					if o.ID.MS == kf.ID.MS && o.ID.Compare(want.ID) > 0 {
						want = o
					}
				}
				img, err := cam.Screenshot(ctx, kf.ID.Time())
				if err != nil {
					t.Fatalf("screenshot at %s: %v", kf.ID, err)
				}
				if img.ID != want.ID {
					t.Fatalf("screenshot at keyframe %s: got packet %s, want %s", kf.ID, img.ID, want.ID)
				}
				if w := ref[pkts[want.Number].display]; !bytes.Equal(img.Data, w) {
					t.Fatalf("screenshot at %s differs from ffmpeg's frame: %.1f dB", kf.ID, testclip.PSNR(img.Data, w))
				}
			}

			// The MP4 export of the same window holds every packet.
			path := filepath.Join(t.TempDir(), "burst.mp4")
			est, err := mp4.Export(ctx, cl.Cache(), "burst", cache.IDAt(p.Start()), cache.ID{MS: uint64(p.EndMS), Seq: ^uint64(0)},
				path, sink.VideoOptions{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if info := testclip.Probe(t, path); est.Frames != int64(len(pkts)) || info.Frames != len(pkts) {
				t.Fatalf("export: %d packets written, ffprobe counts %d frames; want %d", est.Frames, info.Frames, len(pkts))
			}

			kcam := cl.Camera("burst", chrysalis.CameraOptions{KeyframesOnly: true})
			defer kcam.Close()
			kgot := collect(t, kcam, p.Start(), p.End())
			if len(kgot) != len(kfs) {
				t.Fatalf("KeyframesOnly Past: %d images, want %d", len(kgot), len(kfs))
			}
			for i, img := range kgot {
				if img.ID != kfs[i].ID {
					t.Fatalf("KeyframesOnly image %d: packet %s, want %s", i, img.ID, kfs[i].ID)
				}
			}
		})
	}
}

// A gap in packet numbers (lost packets inside a GOP) is never decoded
// across: Past yields the frames before it and resumes at the next
// keyframe, each frame identical to ffmpeg's decode of the whole clip, and
// Latest returns the newest frame decodable without crossing it.
func TestGapNeverDecodedAcross(t *testing.T) {
	clip := testclip.Load(t, "clip720.mp4") // GOP 50, no B-frames
	ref := testclip.Reference(t, "clip720.mp4", "bgr24", 0, 0)
	ctx := context.Background()
	lost := func(i int) bool { return (i >= 20 && i < 23) || (i >= 75 && i < 78) }
	write := func(mc *cache.Memory, upto int) {
		for i, p := range clip.Packets[:upto] {
			if lost(i) {
				continue
			}
			var extra []byte
			if p.Key {
				extra = clip.Extradata
			}
			if _, err := mc.Append(ctx, "gap", &cache.Packet{Timestamp: testclip.MS(t0, i, step), Keyframe: p.Key, Data: p.Data,
				PTS: p.PTS, DTS: p.DTS, TimeBase: clip.TimeBase, CodecName: clip.Codec, Width: clip.Width, Height: clip.Height,
				Extradata: extra, Number: int64(i + 1)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	mc := cache.NewMemory(cache.Retention{})
	defer mc.Close()
	write(mc, 100)
	cl := chrysalis.New(mc, chrysalis.Options{})
	cam := cl.Camera("gap", chrysalis.CameraOptions{})
	defer cam.Close()
	got := collect(t, cam, ms(0), ms(99))
	var want []int // frames decodable without crossing a gap
	for i := range 100 {
		if i < 20 || (i >= 50 && i < 75) {
			want = append(want, i)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("Past: %d frames, want %d (frames 0-19 and 50-74)", len(got), len(want))
	}
	for k, img := range got {
		i := want[k]
		if !img.Time.Equal(ms(i)) {
			t.Fatalf("frame %d: time %v, want %v", k, img.Time, ms(i))
		}
		if !bytes.Equal(img.Data, ref[i]) {
			t.Fatalf("frame %d differs from ffmpeg's: %.1f dB", i, testclip.PSNR(img.Data, ref[i]))
		}
	}
	st := cam.Stats()
	if st.Gaps != 2 || st.Skipped != 27+22 {
		t.Fatalf("stats %+v: want 2 gaps and 49 skipped packets", st)
	}

	// Latest on a live cache whose newest packets follow a gap: the newest
	// frame before the gap, never a frame decoded across it.
	live := cache.NewMemory(cache.Retention{})
	defer live.Close()
	write(live, 80) // ... 74, gap, 78, 79
	lcam := chrysalis.New(live, chrysalis.Options{}).Camera("gap", chrysalis.CameraOptions{})
	defer lcam.Close()
	img, err := lcam.Latest(ctx)
	if err != nil || img == nil {
		t.Fatalf("Latest: %v, %v", img, err)
	}
	if !img.Time.Equal(ms(74)) || !bytes.Equal(img.Data, ref[74]) {
		t.Fatalf("Latest after a gap: frame at %v (%.1f dB against frame 74), want frame 74", img.Time, testclip.PSNR(img.Data, ref[74]))
	}
}

// Times a cache id cannot name are bad input, not a huge or wrapped id.
func TestBadTimes(t *testing.T) {
	cl, _ := memClient(t, "clip720.mp4")
	cam := cl.Camera("clip720.mp4", chrysalis.CameraOptions{})
	defer cam.Close()
	ctx := context.Background()
	for _, bad := range []time.Time{{}, time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(-1, 0),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		t.Run(strconv.Itoa(bad.Year()), func(t *testing.T) {
			if img, err := cam.Screenshot(ctx, bad); !errors.Is(err, chrysalis.ErrBadTime) {
				t.Fatalf("Screenshot(%v) = %v, %v; want ErrBadTime", bad, img, err)
			}
			for _, w := range [][2]time.Time{{bad, ms(99)}, {ms(0), bad}} {
				n := 0
				for img, err := range cam.Past(ctx, w[0], w[1]) {
					n++
					var we *chrysalis.WindowError
					if img != nil || !errors.Is(err, chrysalis.ErrBadTime) || !errors.As(err, &we) {
						t.Fatalf("Past(%v, %v) yielded %v, %v; want a *WindowError wrapping ErrBadTime", w[0], w[1], img, err)
					}
				}
				if n != 1 {
					t.Fatalf("Past(%v, %v): %d elements, want the error alone", w[0], w[1], n)
				}
			}
		})
	}
}

// Sizes a camera cannot honour are errors from every read, not an
// allocation of gigabytes.
func TestBadOptionsRefused(t *testing.T) {
	cl, _ := memClient(t, "clip720.mp4")
	ctx := context.Background()
	huge := cl.Camera("clip720.mp4", chrysalis.CameraOptions{Width: 100000})
	defer huge.Close()
	if img, err := huge.Latest(ctx); img != nil || !errors.Is(err, chrysalis.ErrBadOptions) {
		t.Fatalf("Latest with width 100000: %v, %v; want ErrBadOptions", img, err)
	}
	if img, err := huge.Screenshot(ctx, ms(0)); img != nil || !errors.Is(err, chrysalis.ErrBadOptions) {
		t.Fatalf("Screenshot with width 100000: %v, %v; want ErrBadOptions", img, err)
	}
	// Below MaxImageSide but more than MaxUpscale times the 1280-wide source.
	up := cl.Camera("clip720.mp4", chrysalis.CameraOptions{Width: 6000})
	defer up.Close()
	n := 0
	for img, err := range up.Past(ctx, ms(0), ms(10)) {
		n++
		if img != nil || !errors.Is(err, chrysalis.ErrBadOptions) {
			t.Fatalf("Past with width 6000 on a 1280-wide source: %v, %v; want ErrBadOptions", img, err)
		}
	}
	if n != 1 {
		t.Fatalf("Past with width 6000: %d elements, want the error alone", n)
	}
}
