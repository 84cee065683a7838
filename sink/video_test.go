package sink_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/mp4"
	"github.com/chryscloud/chrysalis-go/sink"
)

// checkVideo asserts the file's frame count, codec, size and duration.
func checkVideo(t *testing.T, path, codec string, frames int, dur float64) {
	t.Helper()
	p := testclip.Probe(t, path)
	t.Logf("%s: %s %dx%d, %d frames, %.3f s", filepath.Base(path), p.Codec, p.Width, p.Height, p.Frames, p.Duration)
	if p.Codec != codec || p.Width != 1280 || p.Height != 720 || p.Frames != frames || math.Abs(p.Duration-dur) > 0.1 {
		t.Fatalf("ffprobe: %+v, want %s 1280x720, %d frames, %.2f s", p, codec, frames, dur)
	}
	// A finished video is an ordinary file, not the temporary file's 0600.
	checkMode(t, path, 0o644)
}

// checkExact asserts that path decodes to exactly the reference frames
// ref[off:off+n].
func checkExact(t *testing.T, path string, ref [][]byte, off, n int) {
	t.Helper()
	got := decodeFile(t, path, "bgr24", 1280, 720, 3)
	if len(got) != n {
		t.Fatalf("decoded %d frames, want %d", len(got), n)
	}
	for i := range got {
		if !bytes.Equal(got[i], ref[off+i]) {
			t.Fatalf("frame %d differs from the source (PSNR %.1f dB)", i, testclip.PSNR(got[i], ref[off+i]))
		}
	}
	t.Logf("%d frames bit-exact with the source", n)
}

func TestVideoFileRemux(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, tc := range []struct{ clip, codec string }{
		{"clip720.mp4", "h264"},
		{"bframes720.mp4", "h264"},
		{"hevc720.mp4", "hevc"},
	} {
		t.Run(tc.clip, func(t *testing.T) {
			f := loadClip(t, tc.clip)
			imgs := f.images(t, chrysalis.CameraOptions{}, 0, 110)
			if len(imgs) != 100 {
				t.Fatalf("%d images", len(imgs))
			}
			out := filepath.Join(t.TempDir(), "out.mp4")
			v := sink.VideoFile(out, sink.VideoOptions{FastStart: true})
			if err := v.Run(context.Background(), feed(context.Background(), imgs)); err != nil {
				t.Fatal(err)
			}
			st := v.Stats()
			if st.Mode != sink.Remux || st.Packets != 100 || st.Skipped != 0 || st.Files != 1 {
				t.Fatalf("stats %+v", st)
			}
			checkVideo(t, out, tc.codec, 100, 4.0)
			checkExact(t, out, testclip.Reference(t, tc.clip, "bgr24", 0, 0), 0, 100)
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*")); len(left) > 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

// Images that start mid-GOP are written from the next keyframe on.
func TestVideoFileRemuxStartsAtKeyframe(t *testing.T) {
	f := loadClip(t, "clip720.mp4")
	imgs := f.images(t, chrysalis.CameraOptions{}, 0, 110)[20:]
	out := filepath.Join(t.TempDir(), "out.mp4")
	v := sink.VideoFile(out, sink.VideoOptions{})
	if err := v.Run(context.Background(), feed(context.Background(), imgs)); err != nil {
		t.Fatal(err)
	}
	if st := v.Stats(); st.Packets != 50 || st.Skipped != 30 {
		t.Fatalf("stats %+v, want 50 packets, 30 skipped", st)
	}
	checkVideo(t, out, "h264", 50, 2.0)
	checkExact(t, out, testclip.Reference(t, "clip720.mp4", "bgr24", 0, 0), 50, 50)
}

func TestVideoFileEncode(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := loadClip(t, "clip720.mp4")
	imgs := f.images(t, chrysalis.CameraOptions{}, 0, 110)
	for i, img := range imgs {
		c := img.Clone()
		img.Release()
		c.Modified = true // as if a model had drawn on it
		imgs[i] = c
	}
	out := filepath.Join(t.TempDir(), "enc.mp4")
	v := sink.VideoFile(out, sink.VideoOptions{})
	start := time.Now()
	if err := v.Run(context.Background(), feed(context.Background(), imgs)); err != nil {
		t.Fatal(err)
	}
	t.Logf("encoded 100 frames in %v", time.Since(start))
	if st := v.Stats(); st.Mode != sink.Encode || st.Packets != 100 {
		t.Fatalf("stats %+v", st)
	}
	checkVideo(t, out, "h264", 100, 4.0)
	ref := testclip.Reference(t, "clip720.mp4", "bgr24", 0, 0)
	got := decodeFile(t, out, "bgr24", 1280, 720, 3)
	if len(got) != 100 {
		t.Fatalf("decoded %d frames", len(got))
	}
	worst, sum := math.Inf(1), 0.0
	for i := range got {
		p := testclip.PSNR(got[i], ref[i])
		worst = min(worst, p)
		sum += p
	}
	t.Logf("encode: PSNR vs source worst %.1f dB, mean %.1f dB", worst, sum/100)
	if worst <= 30 {
		t.Fatalf("worst PSNR %.1f dB", worst)
	}
}

// GRAY8 and RGB24 images encode too, with the right colours.
func TestVideoFileEncodeFormats(t *testing.T) {
	f := loadClip(t, "clip720.mp4")
	for _, tc := range []struct {
		pf  chrysalis.PixelFormat
		fmt string
		bpp int
	}{{chrysalis.RGB24, "rgb24", 3}, {chrysalis.GRAY8, "gray", 1}} {
		t.Run(tc.fmt, func(t *testing.T) {
			imgs := f.images(t, chrysalis.CameraOptions{Format: tc.pf, Width: 640, Height: 360}, 0, 9)
			out := filepath.Join(t.TempDir(), "enc.mp4")
			if err := sink.VideoFile(out, sink.VideoOptions{Mode: sink.Encode}).Run(context.Background(), feed(context.Background(), imgs)); err != nil {
				t.Fatal(err)
			}
			ref := testclip.Reference(t, "clip720.mp4", tc.fmt, 640, 360)
			got := decodeFile(t, out, tc.fmt, 640, 360, tc.bpp)
			if len(got) != 10 {
				t.Fatalf("%d frames", len(got))
			}
			if p := testclip.PSNR(got[5], ref[5]); p <= 30 {
				t.Fatalf("PSNR %.1f dB", p)
			}
		})
	}
}

// Cancelling the context finalizes the file: it is complete and playable.
func TestVideoFileCancel(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := loadClip(t, "clip720.mp4")
	imgs := f.images(t, chrysalis.CameraOptions{}, 0, 110)
	out := filepath.Join(t.TempDir(), "cut.mp4")
	ctx, cancel := context.WithCancel(context.Background())
	in := make(chan flow.Image)
	done := make(chan error, 1)
	v := sink.VideoFile(out, sink.VideoOptions{})
	go func() { done <- v.Run(ctx, in) }()
	for _, img := range imgs[:60] {
		in <- img
	}
	// The sink holds up to 16 packets for reordering; they are written at
	// the end too.
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want context.Canceled", err)
	}
	checkVideo(t, out, "h264", 60, 2.4)
}

func cachePackets(t *testing.T, f *fixture) ([]cache.Packet, cache.Codec) {
	t.Helper()
	ctx := context.Background()
	pkts, err := f.mc.Range(ctx, f.cam, cache.MinID, cache.MaxID, 0)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := f.mc.Codec(ctx, f.cam)
	if err != nil {
		t.Fatal(err)
	}
	return pkts, codec
}

func TestCreateMP4(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, tc := range []struct{ clip, codec string }{
		{"clip720.mp4", "h264"},
		{"bframes720.mp4", "h264"},
		{"hevc720.mp4", "hevc"},
	} {
		t.Run(tc.clip, func(t *testing.T) {
			f := loadClip(t, tc.clip)
			pkts, codec := cachePackets(t, f)
			out := filepath.Join(t.TempDir(), "export.mp4")
			w, err := mp4.Create(out, codec, sink.VideoOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pkts {
				if err := w.WritePacket(p); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Fatalf("file visible before Close (%v)", err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if err := w.WritePacket(pkts[0]); !errors.Is(err, mp4.ErrClosed) {
				t.Fatalf("WritePacket after Close: %v", err)
			}
			if st := w.Stats(); st.Packets != int64(len(pkts)) || st.Mode != sink.Remux {
				t.Fatalf("stats %+v", st)
			}
			checkVideo(t, out, tc.codec, 100, 4.0)
			checkExact(t, out, testclip.Reference(t, tc.clip, "bgr24", 0, 0), 0, 100)
		})
	}
}

func TestCreateMP4Edges(t *testing.T) {
	f := loadClip(t, "clip720.mp4")
	pkts, codec := cachePackets(t, f)
	ref := testclip.Reference(t, "clip720.mp4", "bgr24", 0, 0)
	write := func(t *testing.T, c cache.Codec, ps []cache.Packet) (string, *mp4.Writer, error) {
		out := filepath.Join(t.TempDir(), "x.mp4")
		w, err := mp4.Create(out, c, sink.VideoOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if err := w.WritePacket(p); err != nil {
				t.Fatal(err)
			}
		}
		return out, w, w.Close()
	}

	t.Run("no keyframe", func(t *testing.T) {
		out, _, err := write(t, codec, pkts[1:50])
		if !errors.Is(err, mp4.ErrNoFrames) {
			t.Fatalf("Close: %v, want ErrNoFrames", err)
		}
		if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
			t.Fatalf("files left: %v", ents)
		}
	})
	t.Run("zero codec, no packet sizes", func(t *testing.T) {
		ps := make([]cache.Packet, len(pkts))
		for i, p := range pkts {
			p.Width, p.Height = 0, 0
			ps[i] = p
		}
		out, _, err := write(t, cache.Codec{}, ps)
		if err != nil {
			t.Fatal(err)
		}
		checkVideo(t, out, "h264", 100, 4.0)
	})
	t.Run("lost packet", func(t *testing.T) {
		// Number the packets as the ingest does, then lose #10: packets up
		// to the keyframe at #50 cannot be decoded and are skipped.
		var ps []cache.Packet
		for i, p := range pkts {
			p.Number = int64(i + 1)
			if i != 10 {
				ps = append(ps, p)
			}
		}
		out, w, err := write(t, codec, ps)
		if err != nil {
			t.Fatal(err)
		}
		if st := w.Stats(); st.Packets != 60 || st.Skipped != 39 {
			t.Fatalf("stats %+v, want 60 written, 39 skipped", st)
		}
		got := decodeFile(t, out, "bgr24", 1280, 720, 3)
		if len(got) != 60 || !bytes.Equal(got[9], ref[9]) || !bytes.Equal(got[10], ref[50]) {
			t.Fatalf("decoded %d frames, not the 10 + 50 expected", len(got))
		}
	})
	t.Run("codec change", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "x.mp4")
		w, err := mp4.Create(out, codec, sink.VideoOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		for _, p := range pkts[:50] {
			if err := w.WritePacket(p); err != nil {
				t.Fatal(err)
			}
		}
		kf := pkts[50]
		kf.Width, kf.Height = 640, 360
		if err := w.WritePacket(kf); !errors.Is(err, mp4.ErrCodecChanged) {
			t.Fatalf("WritePacket: %v, want ErrCodecChanged", err)
		}
		if err := w.WriteImage(&chrysalis.ChImage{}); !errors.Is(err, mp4.ErrMixedInput) {
			t.Fatalf("WriteImage on a remux writer: %v", err)
		}
	})
	t.Run("bad dir", func(t *testing.T) {
		if _, err := mp4.Create(filepath.Join(t.TempDir(), "no", "such", "x.mp4"), codec, sink.VideoOptions{}); err == nil {
			t.Fatal("no error")
		}
		if _, err := mp4.Create(filepath.Join(t.TempDir(), "x.mp4"), cache.Codec{Name: "nope"}, sink.VideoOptions{}); err == nil {
			t.Fatal("no error for an unknown codec")
		}
	})
}

func TestClips(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := loadClip(t, "clip720.mp4")
	all := f.images(t, chrysalis.CameraOptions{}, 0, 110)
	// Two bursts: frames 0..30 and 50..99, 760 ms apart.
	imgs := append(append([]flow.Image{}, all[:31]...), all[50:]...)
	for _, img := range all[31:50] {
		img.Release()
	}
	dir := t.TempDir()
	var got []string
	c := sink.Clips(dir, sink.ClipOptions{Gap: 500 * time.Millisecond, OnClip: func(p string) { got = append(got, p) }})
	if err := c.Run(context.Background(), feed(context.Background(), imgs)); err != nil {
		t.Fatal(err)
	}
	files := c.Files()
	if len(files) != 2 || len(got) != 2 || files[0] != got[0] {
		t.Fatalf("files %v, callback %v", files, got)
	}
	if want := filepath.Join(dir, "clip720.mp4_1750000000000.mp4"); files[0] != want {
		t.Errorf("first clip %s, want %s", files[0], want)
	}
	checkVideo(t, files[0], "h264", 31, 1.24)
	checkVideo(t, files[1], "h264", 50, 2.0)
}

// In remux mode (decided by an untouched first image) a modified image is
// written from its original packet, and counted.
func TestVideoFileRemuxModified(t *testing.T) {
	f := loadClip(t, "clip720.mp4")
	imgs := f.images(t, chrysalis.CameraOptions{}, 0, 9)
	c := imgs[5].Clone()
	imgs[5].Release()
	c.Modified = true
	imgs[5] = c
	out := filepath.Join(t.TempDir(), "out.mp4")
	v := sink.VideoFile(out, sink.VideoOptions{})
	if err := v.Run(context.Background(), feed(context.Background(), imgs)); err != nil {
		t.Fatal(err)
	}
	if st := v.Stats(); st.Mode != sink.Remux || st.Packets != 10 || st.Modified != 1 {
		t.Fatalf("stats %+v", st)
	}
	checkExact(t, out, testclip.Reference(t, "clip720.mp4", "bgr24", 0, 0), 0, 10)
}

// MaxDuration splits continuous images into clips at the first keyframe
// past the bound. clip720 is 100 frames with a keyframe every 50 (2 s).
func TestClipsMaxDuration(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := loadClip(t, "clip720.mp4")
	for _, tc := range []struct {
		max    time.Duration
		frames []int // per clip
	}{
		{time.Second, []int{50, 50}},     // past 1 s at frame 25: split at the keyframe 50
		{2 * time.Second, []int{50, 50}}, // frame 50 is exactly 2 s in
		{3 * time.Second, []int{100}},    // no keyframe past 3 s
	} {
		imgs := f.images(t, chrysalis.CameraOptions{}, 0, 99)
		c := sink.Clips(t.TempDir(), sink.ClipOptions{MaxDuration: tc.max})
		if err := c.Run(context.Background(), feed(context.Background(), imgs)); err != nil {
			t.Fatal(err)
		}
		files := c.Files()
		if len(files) != len(tc.frames) {
			t.Fatalf("MaxDuration %v: %d clips %v, want %d", tc.max, len(files), files, len(tc.frames))
		}
		for i, n := range tc.frames {
			checkVideo(t, files[i], "h264", n, float64(n)*0.04)
		}
	}
}
