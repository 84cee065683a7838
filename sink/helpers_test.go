package sink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
)

// t0 is the synthetic cache time of a clip's first packet; packets are
// 40 ms apart (25 fps).
const (
	t0   = int64(1_750_000_000_000)
	step = int64(40)
)

func ms(i int) time.Time { return time.UnixMilli(testclip.MS(t0, i, step)) }

type fixture struct {
	mc   *cache.Memory
	cl   *chrysalis.Client
	clip *testclip.Clip
	cam  string
}

// loadClip writes testdata/name into a memory cache as camera name.
func loadClip(t testing.TB, name string) *fixture {
	t.Helper()
	mc := cache.NewMemory(cache.Retention{})
	t.Cleanup(func() { mc.Close() })
	c := testclip.Load(t, name)
	c.Append(t, mc, name, t0, step)
	return &fixture{mc: mc, cl: chrysalis.New(mc, chrysalis.Options{}), clip: c, cam: name}
}

// images decodes the clip's frames [from, to] through the client.
func (f *fixture) images(t testing.TB, o chrysalis.CameraOptions, from, to int) []flow.Image {
	t.Helper()
	cam := f.cl.Camera(f.cam, o)
	defer cam.Close()
	var out []flow.Image
	for img, err := range cam.Past(context.Background(), ms(from), ms(to)) {
		if err != nil {
			t.Fatalf("past: %v", err)
		}
		out = append(out, img)
	}
	return out
}

// feed sends imgs on a new channel and closes it.
func feed(ctx context.Context, imgs []flow.Image) <-chan flow.Image {
	ch := make(chan flow.Image)
	go func() {
		defer close(ch)
		for _, img := range imgs {
			if flow.Send(ctx, ch, img) != nil {
				return
			}
		}
	}()
	return ch
}

type probeInfo struct {
	Codec    string
	Width    int
	Height   int
	Frames   int
	Duration float64
}

// probe runs ffprobe -count_frames on path.
func probe(t testing.TB, path string) probeInfo {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames:format=duration", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var po struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
			Frames    string `json:"nb_read_frames"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &po); err != nil || len(po.Streams) != 1 {
		t.Fatalf("ffprobe %s: %v: %s", path, err, out)
	}
	s := po.Streams[0]
	n, _ := strconv.Atoi(s.Frames)
	d, _ := strconv.ParseFloat(po.Format.Duration, 64)
	return probeInfo{Codec: s.CodecName, Width: s.Width, Height: s.Height, Frames: n, Duration: d}
}

// decodeFile decodes path with the ffmpeg CLI into raw frames of pixfmt.
func decodeFile(t testing.TB, path, pixfmt string, w, h, bpp int) [][]byte {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "dec.raw")
	if msg, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", pixfmt, "-y", raw).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg decode %s: %v: %s", path, err, msg)
	}
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	n := w * h * bpp
	var frames [][]byte
	for len(b) >= n {
		frames = append(frames, b[:n])
		b = b[n:]
	}
	return frames
}

// requireTool skips (or fails under CI=true) when a binary is missing.
func requireTool(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			msg := fmt.Sprintf("%s not installed", n)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg + " and CI=true")
			}
			t.Skip(msg)
		}
	}
}
