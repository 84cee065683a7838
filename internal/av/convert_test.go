package av

import (
	"bytes"
	"errors"
	"testing"
)

// firstFrame calls fn with the first decoded frame of file.
func firstFrame(t *testing.T, file string, fn func(f *Frame)) {
	t.Helper()
	s := demux(t, testdata+file)
	d := newTestDecoder(t, s.params, DecoderOptions{Threads: 1})
	done := errors.New("done")
	p := s.packets[0]
	if err := d.Decode(p.data, p.pts, p.dts, p.key, func(f *Frame) error { fn(f); return done }); err != done {
		t.Fatalf("no frame from the first packet (err %v)", err)
	}
}

func TestConvert(t *testing.T) {
	firstFrame(t, "clip720.mp4", func(f *Frame) {
		var c Converter
		defer c.Close()

		bgr, stride, w, h, err := c.Convert(f, 0, 0, BGR24, nil)
		if err != nil || w != 1280 || h != 720 || stride != 1280*3 || len(bgr) != 1280*720*3 {
			t.Fatalf("BGR24: %dx%d stride %d len %d, %v", w, h, stride, len(bgr), err)
		}

		t.Run("rgb24", func(t *testing.T) {
			rgb, stride, _, _, err := c.Convert(f, 0, 0, RGB24, nil)
			if err != nil || stride != 1280*3 || len(rgb) != len(bgr) {
				t.Fatalf("RGB24: stride %d len %d, %v", stride, len(rgb), err)
			}
			for i := 0; i < len(rgb); i += 3 {
				if rgb[i] != bgr[i+2] || rgb[i+1] != bgr[i+1] || rgb[i+2] != bgr[i] {
					t.Fatalf("pixel %d: rgb %v, bgr %v", i/3, rgb[i:i+3], bgr[i:i+3])
				}
			}
		})

		t.Run("gray8", func(t *testing.T) {
			gray, stride, w, h, err := c.Convert(f, 0, 0, GRAY8, nil)
			if err != nil || w != 1280 || h != 720 || stride != 1280 || len(gray) != 1280*720 {
				t.Fatalf("GRAY8: %dx%d stride %d len %d, %v", w, h, stride, len(gray), err)
			}
			want := make([]byte, len(gray))
			if err := startFFmpeg(t, testdata+"clip720.mp4", "gray").next(want); err != nil {
				t.Fatal(err)
			}
			// Not bit-exact: ffmpeg's yuv420p -> gray path rounds
			// differently (56.9 dB measured); a wrong plane or range would
			// be far below 50.
			p := psnr(want, gray)
			t.Logf("GRAY8 against ffmpeg's gray: PSNR %.2f dB", p)
			if p < 50 {
				t.Errorf("GRAY8 PSNR %.2f dB against ffmpeg's gray, want >= 50 (56.9 measured)", p)
			}
		})

		t.Run("resize", func(t *testing.T) {
			small, stride, w, h, err := c.Convert(f, 640, 360, BGR24, nil)
			if err != nil || w != 640 || h != 360 || stride != 640*3 || len(small) != 640*360*3 {
				t.Fatalf("640x360: %dx%d stride %d len %d, %v", w, h, stride, len(small), err)
			}
			// Compare with ffmpeg's bilinear downscale.
			want := make([]byte, len(small))
			ref := startFFmpegArgs(t, testdata+"clip720.mp4", "-vf", "scale=640:360:flags=bilinear", "-pix_fmt", "bgr24")
			if err := ref.next(want); err != nil {
				t.Fatal(err)
			}
			// The same swscale bilinear pass as ffmpeg's: bit-exact.
			if !bytes.Equal(want, small) {
				t.Errorf("640x360 differs from ffmpeg's bilinear downscale: PSNR %.2f dB", psnr(want, small))
			}

			// A single 0 keeps the aspect ratio.
			if _, _, w, h, err := c.Convert(f, 320, 0, GRAY8, nil); err != nil || w != 320 || h != 180 {
				t.Errorf("320x0: %dx%d, %v", w, h, err)
			}
			if _, _, w, h, err := c.Convert(f, 0, 90, GRAY8, nil); err != nil || w != 160 || h != 90 {
				t.Errorf("0x90: %dx%d, %v", w, h, err)
			}
		})

		t.Run("buffer", func(t *testing.T) {
			buf := make([]byte, 10, 640*360*3+100)
			out, _, _, _, err := c.Convert(f, 640, 360, BGR24, buf)
			if err != nil || len(out) != 640*360*3 || &out[0] != &buf[0] {
				t.Errorf("dst with enough capacity was not reused (len %d, %v)", len(out), err)
			}
			out, _, _, _, err = c.Convert(f, 0, 0, BGR24, buf)
			if err != nil || len(out) != 1280*720*3 || &out[0] == &buf[0] {
				t.Errorf("small dst was not grown (len %d, %v)", len(out), err)
			}
			allocs := testing.AllocsPerRun(20, func() {
				buf, _, _, _, err = c.Convert(f, 640, 360, BGR24, buf)
			})
			if err != nil || allocs != 0 {
				t.Errorf("steady-state Convert: %v allocs per call, err %v", allocs, err)
			}
		})

		t.Run("errors", func(t *testing.T) {
			if _, _, _, _, err := c.Convert(f, 0, 0, PixelFormat(42), nil); err == nil {
				t.Error("unknown PixelFormat accepted")
			}
			if _, _, _, _, err := c.Convert(f, -1, 10, BGR24, nil); err == nil {
				t.Error("negative size accepted")
			}
			if _, _, _, _, err := c.Convert(nil, 0, 0, BGR24, nil); err == nil {
				t.Error("nil frame accepted")
			}
			if _, _, _, _, err := c.Convert(&Frame{}, 0, 0, BGR24, nil); err == nil {
				t.Error("empty frame accepted")
			}
		})

		t.Run("close", func(t *testing.T) {
			var nilConv *Converter
			if err := nilConv.Close(); err != nil {
				t.Error(err)
			}
			var c2 Converter
			for range 2 {
				if err := c2.Close(); err != nil {
					t.Error(err)
				}
			}
			if _, _, _, _, err := c2.Convert(f, 64, 36, BGR24, nil); err != nil {
				t.Errorf("Convert after Close: %v", err)
			}
			c2.Close()
		})
	})
}

func TestPixelFormat(t *testing.T) {
	var zero PixelFormat
	if zero != BGR24 || zero.String() != "bgr24" || zero.BytesPerPixel() != 3 {
		t.Errorf("zero PixelFormat = %v (%d bpp), want bgr24", zero, zero.BytesPerPixel())
	}
	if GRAY8.BytesPerPixel() != 1 || RGB24.String() != "rgb24" || PixelFormat(9).BytesPerPixel() != 0 {
		t.Error("PixelFormat methods")
	}
}
