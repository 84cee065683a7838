package av

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/asticode/go-astiav"
)

// TestDecodeMatchesFFmpeg decodes AVCC (MP4) streams and compares every
// BGR24 frame with the ffmpeg CLI's output.
func TestDecodeMatchesFFmpeg(t *testing.T) {
	for _, tc := range []struct {
		file     string
		bframes  bool
		threads  int
		wantName string
	}{
		{file: "clip720.mp4", wantName: "h264"},
		{file: "clip720.mp4", threads: 1, wantName: "h264"},
		{file: "bframes720.mp4", bframes: true, wantName: "h264"},
		{file: "hevc720.mp4", wantName: "hevc"},
	} {
		t.Run(strings.TrimSuffix(tc.file, ".mp4")+map[bool]string{true: "/threads1"}[tc.threads == 1], func(t *testing.T) {
			s := demux(t, testdata+tc.file)
			if s.params.Name != tc.wantName {
				t.Fatalf("codec %q, want %q", s.params.Name, tc.wantName)
			}
			d := newTestDecoder(t, s.params, DecoderOptions{Threads: tc.threads})
			ref := startFFmpeg(t, testdata+tc.file, "bgr24")
			var conv Converter
			defer conv.Close()

			const w, h = 1280, 720
			want := make([]byte, w*h*3)
			var got []byte
			var (
				n       int
				lastPts = int64(math.MinInt64)
				types   = map[string]int{}
			)
			decodeAll(t, d, s.packets, func(f *Frame) error {
				if f.Width() != w || f.Height() != h {
					t.Fatalf("frame %d: size %dx%d", n, f.Width(), f.Height())
				}
				if f.Pts() <= lastPts {
					t.Errorf("frame %d: pts %d after %d, want increasing (display order)", n, f.Pts(), lastPts)
				}
				lastPts = f.Pts()
				if n == 0 && (!f.KeyFrame() || f.PictType() != "I") {
					t.Errorf("first frame: key=%v type=%q, want keyframe I", f.KeyFrame(), f.PictType())
				}
				types[f.PictType()]++

				var stride, cw, ch int
				var err error
				got, stride, cw, ch, err = conv.Convert(f, 0, 0, BGR24, got)
				if err != nil {
					t.Fatalf("frame %d: %v", n, err)
				}
				if cw != w || ch != h || stride != w*3 || len(got) != w*h*3 {
					t.Fatalf("frame %d: converted %dx%d stride %d len %d", n, cw, ch, stride, len(got))
				}
				if err := ref.next(want); err != nil {
					t.Fatalf("reference frame %d: %v", n, err)
				}
				// Same decoder, same conversion as the ffmpeg CLI: bit-exact.
				if !bytes.Equal(want, got) {
					t.Errorf("frame %d (pts %d) differs from ffmpeg's: PSNR %.2f dB", n, f.Pts(), psnr(want, got))
				}
				n++
				return nil
			})
			if n != 100 {
				t.Errorf("decoded %d frames, want 100", n)
			}
			if err := ref.next(want); err != io.EOF {
				t.Errorf("ffmpeg has more than %d frames (err %v)", n, err)
			}
			if tc.bframes && types["B"] == 0 {
				t.Errorf("no B-frame decoded from %s: %v", tc.file, types)
			}
			t.Logf("%d frames, types %v, each equal to ffmpeg's", n, types)
		})
	}
}

// TestResolutionChange decodes an Annex-B MPEG-TS stream without extradata
// whose resolution changes mid-stream.
func TestResolutionChange(t *testing.T) {
	s := demux(t, testdata+"reschange.ts")
	s.params.Extradata = nil // Annex-B with in-band SPS/PPS, as from a live source
	d := newTestDecoder(t, s.params, DecoderOptions{})
	var conv, small Converter
	defer conv.Close()
	defer small.Close()

	var buf, sbuf []byte
	n := 0
	decodeAll(t, d, s.packets, func(f *Frame) error {
		wantW, wantH := 640, 360
		if n >= 50 {
			wantW, wantH = 1280, 720
		}
		if f.Width() != wantW || f.Height() != wantH {
			t.Errorf("frame %d: %dx%d, want %dx%d", n, f.Width(), f.Height(), wantW, wantH)
		}
		if (n == 0 || n == 50) && !f.KeyFrame() {
			t.Errorf("frame %d: not a keyframe", n)
		}
		var w, h, stride int
		var err error
		buf, stride, w, h, err = conv.Convert(f, 0, 0, BGR24, buf)
		if err != nil || w != wantW || h != wantH || stride != wantW*3 || len(buf) != wantW*wantH*3 {
			t.Fatalf("frame %d: Convert = %dx%d stride %d len %d, %v", n, w, h, stride, len(buf), err)
		}
		sbuf, stride, w, h, err = small.Convert(f, 320, 180, RGB24, sbuf)
		if err != nil || w != 320 || h != 180 || stride != 960 || len(sbuf) != 320*180*3 {
			t.Fatalf("frame %d: resize = %dx%d stride %d len %d, %v", n, w, h, stride, len(sbuf), err)
		}
		n++
		return nil
	})
	if n != 100 {
		t.Errorf("decoded %d frames, want 100", n)
	}
}

func countFrames(n *int) func(*Frame) error {
	return func(*Frame) error { *n++; return nil }
}

// TestGarbagePacket feeds random bytes in the middle of a stream: the
// decoder must not panic, must report a *DecodeError (or skip the packet),
// and must resume at the next keyframe.
func TestGarbagePacket(t *testing.T) {
	for _, tc := range []struct {
		name    string
		file    string
		annexB  bool
		threads int
		off     bool // DecoderOptions.OffThread
	}{
		{"avcc", "clip720.mp4", false, 0, false},
		{"avcc/threads1", "clip720.mp4", false, 1, false},
		{"avcc/threads1/offthread", "clip720.mp4", false, 1, true},
		{"hevc", "hevc720.mp4", false, 0, false},
		{"annexb", "reschange.ts", true, 0, false},
		{"annexb/threads1", "reschange.ts", true, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := demux(t, testdata+tc.file)
			if tc.annexB {
				s.params.Extradata = nil
			}
			rng := rand.New(rand.NewPCG(1, 2))
			for seed := range 5 {
				d := newTestDecoder(t, s.params, DecoderOptions{Threads: tc.threads, OffThread: tc.off})
				n := 0
				for _, p := range s.packets[:20] {
					if err := d.Decode(p.data, p.pts, p.dts, p.key, countFrames(&n)); err != nil {
						t.Fatal(err)
					}
				}
				garbage := make([]byte, 100+rng.IntN(20000))
				for i := range garbage {
					garbage[i] = byte(rng.Uint32())
				}
				if seed == 0 && !tc.annexB {
					// A NAL length larger than the packet: always invalid.
					copy(garbage, []byte{0x7f, 0xff, 0xff, 0xff})
				}
				err := d.Decode(garbage, 999999, 999999, seed%2 == 0, countFrames(&n))
				var de *DecodeError
				switch {
				case err == nil:
				case errors.As(err, &de):
					if !errors.Is(err, de.Err) || de.Op == "" {
						t.Errorf("seed %d: malformed DecodeError %#v", seed, de)
					}
				default:
					t.Fatalf("seed %d: error %v (%T), want *DecodeError", seed, err, err)
				}
				if seed == 0 && !tc.annexB && tc.threads == 1 && !errors.As(err, &de) {
					t.Errorf("seed 0: invalid NAL length accepted silently (err %v)", err)
				}
				t.Logf("seed %d: garbage of %d bytes -> %v", seed, len(garbage), err)

				// Resume at the next keyframe (packet 50).
				resumed := 0
				var firstPts int64 = NoPTS
				var firstKey bool
				for _, p := range s.packets[50:] {
					err := d.Decode(p.data, p.pts, p.dts, p.key, func(f *Frame) error {
						if f.Pts() >= s.packets[50].pts {
							if resumed == 0 {
								firstPts, firstKey = f.Pts(), f.KeyFrame()
							}
							resumed++
						}
						return nil
					})
					if err != nil && !errors.As(err, &de) {
						t.Fatalf("seed %d: after resume: %v", seed, err)
					}
				}
				if err := d.Flush(func(f *Frame) error {
					if f.Pts() >= s.packets[50].pts {
						resumed++
					}
					return nil
				}); err != nil && !errors.As(err, &de) {
					t.Fatalf("seed %d: flush: %v", seed, err)
				}
				if resumed != 50 || firstPts != s.packets[50].pts || !firstKey {
					t.Errorf("seed %d: resumed %d frames from pts %d (key %v), want 50 from keyframe pts %d",
						seed, resumed, firstPts, firstKey, s.packets[50].pts)
				}
				d.Close()
			}
		})
	}
}

// TestFlushResetReuse checks that Flush leaves the decoder usable and that
// Reset drops the old state, with avcodec_flush_buffers and with the
// re-open fallback.
func TestFlushResetReuse(t *testing.T) {
	s := demux(t, testdata+"bframes720.mp4")
	for _, fallback := range []bool{false, true} {
		name := "flush_buffers"
		if fallback {
			name = "reopen"
		}
		t.Run(name, func(t *testing.T) {
			if fallback {
				saved := canReachCodecContext
				canReachCodecContext = false
				defer func() { canReachCodecContext = saved }()
			}
			d := newTestDecoder(t, s.params, DecoderOptions{})
			for round := range 2 {
				n := 0
				decodeAll(t, d, s.packets, countFrames(&n))
				if n != 100 {
					t.Errorf("round %d: %d frames, want 100", round, n)
				}
			}

			// Stop mid-GOP, reset, and seek to the second keyframe.
			for _, p := range s.packets[:30] {
				if err := d.Decode(p.data, p.pts, p.dts, p.key, nil); err != nil {
					t.Fatal(err)
				}
			}
			d.Reset()
			var pts []int64
			decodeAll(t, d, s.packets[50:], func(f *Frame) error {
				if len(pts) == 0 && !f.KeyFrame() {
					t.Errorf("first frame after Reset is not a keyframe")
				}
				pts = append(pts, f.Pts())
				return nil
			})
			if len(pts) != 50 || pts[0] != s.packets[50].pts {
				t.Errorf("after Reset: %d frames starting at pts %v, want 50 starting at %d", len(pts), pts[:min(1, len(pts))], s.packets[50].pts)
			}
		})
	}
}

func TestCallbackError(t *testing.T) {
	s := demux(t, testdata+"clip720.mp4")
	d := newTestDecoder(t, s.params, DecoderOptions{Threads: 1})
	stop := errors.New("stop")
	p := s.packets[0]
	if err := d.Decode(p.data, p.pts, p.dts, p.key, func(*Frame) error { return stop }); err != stop {
		t.Fatalf("Decode = %v, want the callback's error", err)
	}
	n := 0
	decodeAll(t, d, s.packets[1:], countFrames(&n))
	if n != 99 {
		t.Errorf("%d frames after callback error, want 99", n)
	}
}

// TestHWFallback: no VAAPI/CUDA device here, so the decoder must warn once
// and decode in software.
func TestHWFallback(t *testing.T) {
	s := demux(t, testdata+"clip720.mp4")
	for _, dev := range []string{"vaapi", "cuda", "nosuchdevice"} {
		t.Run(dev, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			d, err := NewDecoder(s.params, DecoderOptions{HWDevice: dev, Logger: logger})
			if err != nil {
				t.Fatalf("NewDecoder: %v", err)
			}
			defer d.Close()
			n := 0
			decodeAll(t, d, s.packets, countFrames(&n))
			d.Reset()
			if n != 100 {
				t.Errorf("%d frames, want 100", n)
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], dev) {
				t.Errorf("want one Warn line mentioning %q, got:\n%s", dev, logs.String())
			}
			t.Log(lines[0])
		})
	}
}

func TestDecoderLifecycle(t *testing.T) {
	var nilDec *Decoder
	if err := nilDec.Close(); err != nil {
		t.Errorf("nil Close = %v", err)
	}
	if err := nilDec.Decode([]byte{1}, 0, 0, true, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("nil Decode = %v, want ErrClosed", err)
	}
	nilDec.Reset()

	if _, err := NewDecoder(CodecParams{Name: "nosuchcodec"}, DecoderOptions{}); err == nil {
		t.Error("NewDecoder accepted an unknown codec")
	}
	if _, err := NewDecoder(CodecParams{Name: "h264"}, DecoderOptions{Threads: -1}); err == nil {
		t.Error("NewDecoder accepted a negative thread count")
	}

	d, err := NewDecoder(CodecParams{Name: "H265"}, DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Decode(nil, 0, 0, false, nil); err != nil {
		t.Errorf("empty packet: %v", err)
	}
	if err := d.Flush(nil); err != nil {
		t.Errorf("Flush of an empty decoder: %v", err)
	}
	for range 2 {
		if err := d.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
	}
	if err := d.Decode([]byte{0, 0, 0, 1, 0x40}, 0, 0, true, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Decode after Close = %v, want ErrClosed", err)
	}
	if err := d.Flush(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close = %v, want ErrClosed", err)
	}
	d.Reset()
}

// Keep astiav imported for errors.Is checks in this file.
var _ = astiav.ErrInvaliddata
