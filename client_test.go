package chrysalis_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// t0 is the synthetic cache time of a clip's first packet; packets are
// 40 ms apart (25 fps).
const (
	t0   = int64(1_750_000_000_000)
	step = int64(40)
)

func ms(i int) time.Time { return time.UnixMilli(testclip.MS(t0, i, step)) }

func memClient(t *testing.T, clips ...string) (*chrysalis.Client, []*testclip.Clip) {
	t.Helper()
	mc := cache.NewMemory(cache.Retention{})
	t.Cleanup(func() { mc.Close() })
	var cs []*testclip.Clip
	for _, name := range clips {
		c := testclip.Load(t, name)
		c.Append(t, mc, name, t0, step)
		cs = append(cs, c)
	}
	return chrysalis.New(mc, chrysalis.Options{}), cs
}

func collect(t *testing.T, cam *chrysalis.Camera, from, to time.Time) []*chrysalis.ChImage {
	t.Helper()
	var out []*chrysalis.ChImage
	for img, err := range cam.Past(context.Background(), from, to) {
		if err != nil {
			t.Fatalf("past: %v", err)
		}
		out = append(out, img)
	}
	return out
}

// checkExact fails unless every image's pixels equal ref[offset+i] byte
// for byte: decoding to full-size BGR24 is the same lossless path as
// ffmpeg's, so anything less than equal is a bug (the PSNR is in the
// message to say how far off).
func checkExact(t *testing.T, got []*chrysalis.ChImage, ref [][]byte, offset int) {
	t.Helper()
	for i, img := range got {
		if want := ref[offset+i]; !bytes.Equal(img.Data, want) {
			t.Fatalf("frame %d differs from ffmpeg's decode: PSNR %.1f dB (size %dx%d, %d bytes vs %d)", offset+i,
				testclip.PSNR(img.Data, want), img.Width, img.Height, len(img.Data), len(want))
		}
	}
	t.Logf("%d frames, each equal to ffmpeg's decode", len(got))
}

// Past images for a whole clip equal ffmpeg's bgr24 decode, frame for frame
// and in count.
func TestPastMatchesFFmpeg(t *testing.T) {
	for _, name := range []string{"clip720.mp4", "bframes720.mp4", "hevc720.mp4"} {
		t.Run(name, func(t *testing.T) {
			cl, clips := memClient(t, name)
			cam := cl.Camera(name, chrysalis.CameraOptions{})
			defer cam.Close()
			got := collect(t, cam, ms(0), ms(len(clips[0].Packets)+10))
			ref := testclip.Reference(t, name, "bgr24", 0, 0)
			if len(got) != len(ref) || len(ref) != 100 {
				t.Fatalf("got %d frames, ffmpeg %d, want 100", len(got), len(ref))
			}
			for i, img := range got {
				if img.Format != chrysalis.BGR24 || img.Width != 1280 || img.Height != 720 || img.Stride != 1280*3 {
					t.Fatalf("frame %d: %v %dx%d stride %d", i, img.Format, img.Width, img.Height, img.Stride)
				}
				if i > 0 && !img.Time.After(got[i-1].Time) {
					t.Fatalf("frame %d: time %v not after %v", i, img.Time, got[i-1].Time)
				}
			}
			checkExact(t, got, ref, 0)
		})
	}
}

// A cache written with raw Redis commands by a helper that shares no code
// with the ingest reads correctly.
func TestIndependentRedisWriter(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	ctx := context.Background()
	cl, err := chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: srv.URL()}, chrysalis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rc := cl.Cache().(*rediscache.Cache)
	for _, name := range []string{"clip720.mp4", "bframes720.mp4"} {
		clip := testclip.Load(t, name)
		clip.WriteRedis(t, rc.Client().(*redis.Client), name, t0, step)
		cam := cl.Camera(name, chrysalis.CameraOptions{})
		p, err := cam.Probe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p.Frames != 100 || p.Keyframes != 2 || p.Codec != "h264" || p.Width != 1280 || p.Height != 720 ||
			p.StartMS != t0 || p.EndMS != testclip.MS(t0, 99, step) {
			t.Fatalf("probe %+v", p)
		}
		if want := 100 / 3.96; p.FPS < want-0.01 || p.FPS > want+0.01 || p.DurationSec != 3.96 {
			t.Fatalf("probe fps %.3f duration %.3f, want %.3f and 3.96", p.FPS, p.DurationSec, want)
		}
		got := collect(t, cam, ms(0), ms(110))
		ref := testclip.Reference(t, name, "bgr24", 0, 0)
		if len(got) != 100 {
			t.Fatalf("%s: %d frames from Redis, want 100", name, len(got))
		}
		checkExact(t, got, ref, 0)
		cam.Close()
	}
}
