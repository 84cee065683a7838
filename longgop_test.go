package chrysalis_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

// A 4200-frame GOP in Redis (longer than the 4096 packets the keyframe scan
// reads inside Redis, so the index is used): Latest reads it in pages,
// decodes each packet once, and returns the last frame exactly.
func TestLatestLongGOP(t *testing.T) {
	testclip.RequireFFmpeg(t)
	const n = 4200
	path := filepath.Join(t.TempDir(), "longgop.mp4")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25",
		"-frames:v", "4200", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "4200",
		"-keyint_min", "4200", "-sc_threshold", "0", "-bf", "0", path).CombinedOutput(); err != nil {
		t.Fatalf("make clip: %v: %s", err, out)
	}
	clip := testclip.Load(t, path)
	if len(clip.Packets) != n || !clip.Packets[0].Key || clip.Packets[n-1].Key {
		t.Fatalf("clip: %d packets, want one GOP of %d", len(clip.Packets), n)
	}
	srv := testredis.Start(t, testredis.Options{})
	ctx := context.Background()
	cl, err := chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: srv.URL()}, chrysalis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	clip.Append(t, cl.Cache(), "long", t0, step)
	cam := cl.Camera("long", chrysalis.CameraOptions{})
	defer cam.Close()
	img, err := cam.Latest(ctx)
	if err != nil || img == nil {
		t.Fatalf("Latest: %v, %v", img, err)
	}
	ref := testclip.Reference(t, path, "bgr24", 160, 120)
	if !bytes.Equal(img.Data, ref[n-1]) {
		t.Fatalf("Latest is not the last frame: PSNR %.1f dB against frame %d", testclip.PSNR(img.Data, ref[n-1]), n-1)
	}
	if st := cam.Stats(); st.Decoded != n || st.Converted != 1 {
		t.Fatalf("stats %+v: want %d packets decoded once each, one conversion", st, n)
	}
}
