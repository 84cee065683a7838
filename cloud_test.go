package chrysalis_test

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

// TestCloudLayoutSDKWriter reads caches in the Chrysalis Cloud layout
// written by raw XADDs of the access units `ffmpeg -bsf:v
// <codec>_mp4toannexb -f <codec>` produces (testclip.WriteCloud, no code
// shared with the ingest), paced (ids 40 ms apart) and unpaced (one
// pipeline of "*" ids, many sharing a millisecond): Probe counts the
// entries, Past yields one frame per entry equal to ffmpeg's decode (PSNR >
// 40 dB), keyframes-only Past and Screenshot hit the exact keyframes, and
// Latest is the last frame.
func TestCloudLayoutSDKWriter(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	for _, tc := range []struct {
		clip  string
		paced bool
		key   string                 // stream key written
		co    rediscache.ConnOptions // how the reader is told
	}{
		// The SDK's own setup: the default key, layout detected.
		{"clip720.mp4", true, "input_rtmp_stream", rediscache.ConnOptions{}},
		{"clip720.mp4", false, "unpaced_cam", rediscache.ConnOptions{Layout: rediscache.LayoutCloud, StreamKey: "unpaced_{camera}"}},
		{"hevc720.mp4", true, "hevc_cam", rediscache.ConnOptions{Layout: rediscache.LayoutCloud, StreamKey: "hevc_{camera}"}},
		{"bframes720.mp4", true, "bf_cam", rediscache.ConnOptions{StreamKey: "bf_{camera}"}},
	} {
		name := tc.clip + map[bool]string{true: "/paced", false: "/unpaced"}[tc.paced]
		t.Run(name, func(t *testing.T) {
			clip := testclip.Load(t, tc.clip)
			a := testclip.LoadAnnexB(t, tc.clip)
			step := int64(40)
			if !tc.paced {
				step = -1
			}
			raw := a.WriteCloud(t, rdb, tc.key, t0, step)
			ids := make([]cache.ID, len(raw))
			for i, s := range raw {
				var err error
				if ids[i], err = cache.ParseID(s); err != nil {
					t.Fatal(err)
				}
			}
			co := tc.co
			co.URL = srv.URL()
			cl, err := chrysalis.DialRedis(ctx, co, chrysalis.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			cam := cl.Camera("cam", chrysalis.CameraOptions{})
			defer cam.Close()

			p, err := cam.Probe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if p.Frames != 100 || p.Codec != clip.Codec || p.Width != 1280 || p.Height != 720 ||
				p.StartMS != int64(ids[0].MS) || p.EndMS != int64(ids[99].MS) {
				t.Fatalf("probe %+v, want 100 frames %s 1280x720 from %v to %v", p, clip.Codec, ids[0], ids[99])
			}

			ref := testclip.Reference(t, tc.clip, "bgr24", 0, 0)
			got := collect(t, cam, ids[0].Time(), ids[99].Time())
			if len(got) != 100 || len(ref) != 100 {
				t.Fatalf("past: %d frames, ffmpeg %d, want one per entry (100)", len(got), len(ref))
			}
			checkExact(t, got, ref, 0)
			// Each frame is labelled with its own entry: display frame j
			// is the packet with the j-th smallest PTS in ffprobe's list.
			order := make([]int, len(clip.Packets))
			for i := range order {
				order[i] = i
			}
			slices.SortFunc(order, func(a, b int) int { return cmp.Compare(clip.Packets[a].PTS, clip.Packets[b].PTS) })
			for j, img := range got {
				if img.ID != ids[order[j]] {
					t.Fatalf("past frame %d labelled %v, want entry %d (%v)", j, img.ID, order[j], ids[order[j]])
				}
			}

			var keys []int
			for i, pk := range clip.Packets {
				if pk.Key {
					keys = append(keys, i)
				}
			}
			kcam := cl.Camera("cam", chrysalis.CameraOptions{KeyframesOnly: true})
			defer kcam.Close()
			kgot := collect(t, kcam, ids[0].Time(), ids[99].Time())
			if len(kgot) != len(keys) {
				t.Fatalf("keyframes-only past: %d frames, want %d", len(kgot), len(keys))
			}
			for i, img := range kgot {
				if img.ID != ids[keys[i]] || testclip.PSNR(img.Data, ref[keys[i]]) < 40 {
					t.Fatalf("keyframe %d: id %v, want %v (PSNR %.1f)", i, img.ID, ids[keys[i]], testclip.PSNR(img.Data, ref[keys[i]]))
				}
			}

			// Screenshot at entry k's millisecond: the newest keyframe whose
			// id's millisecond is at or before it.
			for _, k := range []int{0, 1, 49, 50, 51, 70, 99} {
				want := -1
				for _, i := range keys {
					if ids[i].MS <= ids[k].MS {
						want = i
					}
				}
				img, err := cam.Screenshot(ctx, ids[k].Time())
				if err != nil {
					t.Fatalf("screenshot at entry %d: %v", k, err)
				}
				if !img.Keyframe || img.ID != ids[want] {
					t.Fatalf("screenshot at entry %d: %v (keyframe %v), want entry %d %v", k, img.ID, img.Keyframe, want, ids[want])
				}
				if ps := testclip.PSNR(img.Data, ref[want]); ps < 40 {
					t.Fatalf("screenshot at entry %d: PSNR %.1f vs frame %d", k, ps, want)
				}
			}
			if _, err := cam.Screenshot(ctx, ids[0].Time().Add(-time.Millisecond)); !errors.Is(err, chrysalis.ErrNotFound) {
				t.Fatalf("screenshot before the first entry: %v, want ErrNotFound", err)
			}

			img, err := cam.Latest(ctx)
			if err != nil || img == nil {
				t.Fatalf("latest: %v %v", img, err)
			}
			// Latest is the newest frame: the last entry, also when the
			// unpaced writer put many entries in its millisecond (frames
			// are ordered by time, then by cache id).
			last := 99
			if tc.clip == "bframes720.mp4" {
				last = -1 // display order: find the frame it is
				for i := range ref {
					if testclip.PSNR(img.Data, ref[i]) >= 40 {
						last = i
					}
				}
			}
			if last < 0 || testclip.PSNR(img.Data, ref[last]) < 40 {
				t.Fatalf("latest matches no frame of the clip's end")
			}
		})
	}
}

// TestCloudLayoutErrors: an unknown layout and an empty stream are clear
// errors through the client.
func TestCloudLayoutErrors(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	ctx := context.Background()
	_, err := chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: srv.URL(), Layout: "sdk"}, chrysalis.Options{})
	if !errors.Is(err, rediscache.ErrUnknownLayout) {
		t.Fatalf("unknown layout: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.XGroupCreateMkStream(ctx, "input_rtmp_stream", "g", "$").Err(); err != nil {
		t.Fatal(err)
	}
	cl, err := chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: srv.URL()}, chrysalis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cam := cl.Camera("cam", chrysalis.CameraOptions{})
	defer cam.Close()
	if _, err := cam.Probe(ctx); !errors.Is(err, chrysalis.ErrEmpty) {
		t.Fatalf("probe of an empty cloud stream: %v, want ErrEmpty", err)
	}
	if _, err := cam.Latest(ctx); !errors.Is(err, chrysalis.ErrEmpty) {
		t.Fatalf("latest of an empty cloud stream: %v, want ErrEmpty", err)
	}
}
