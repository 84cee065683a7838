package sink_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
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

// checkMode asserts that path has the permission bits perm.
func checkMode(t testing.TB, path string, perm os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != perm {
		t.Errorf("%s: mode %v, want %v", path, got, perm)
	}
}
