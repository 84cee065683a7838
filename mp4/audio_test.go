package mp4_test

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/chryscloud/chrysalis-go/mp4"
)

// aacFrames encodes a 440 Hz sine of sec seconds at 48 kHz with the ffmpeg
// CLI's AAC encoder as ADTS and splits it into frames by their header
// lengths.
func aacFrames(t *testing.T, sec int) [][]byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", strconv.Itoa(sec), "-c:a", "aac", "-b:a", "64k", "-f", "adts", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg aac: %v", err)
	}
	var frames [][]byte
	for len(out) >= 7 {
		n := int(out[3]&3)<<11 | int(out[4])<<3 | int(out[5]>>5)
		frames, out = append(frames, out[:n]), out[n:]
	}
	return frames
}

// withCRC rewrites a 7-byte-header ADTS frame with a CRC (protection
// absent 0, two CRC bytes after the header, the length grown by 2).
func withCRC(f []byte) []byte {
	h := append([]byte(nil), f[:7]...)
	n := len(f) + 2
	h[1] &^= 1
	h[3] = h[3]&^3 | byte(n>>11)
	h[4] = byte(n >> 3)
	h[5] = byte(n&7)<<5 | h[5]&0x1f
	return append(append(h, 0x12, 0x34), f[7:]...)
}

// TestExportAudio: mp4.Export of a cloud-layout window (video and audio
// written by raw XADDs, the audio on the video's clock) has an AAC track
// that ffprobe reads, covering the video within half an audio frame at
// both ends; audio that starts inside the window starts there; ADTS with a
// CRC is muxed; garbage entries are skipped and counted; a camera without
// audio, or an audio key that is not a stream, gives a video-only file. Every file decodes without an error.
func TestExportAudio(t *testing.T) {
	testclip.RequireFFmpeg(t)
	srv := testredis.Start(t, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	rc, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: srv.URL(), Layout: rediscache.LayoutCloud},
		rediscache.Options{CloudStream: "v_{camera}", CloudAudioStream: "a_{camera}"})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	video := testclip.LoadAnnexB(t, "clip720.mp4") // 100 frames at 40 ms, keyframes 0 and 50
	aac := aacFrames(t, 6)
	const (
		t0       = int64(1_700_000_000_000)
		frameSec = 1024.0 / 48000
	)
	// The window: frames 60..89; the file starts at the keyframe 50.
	from, to := cache.ID{MS: uint64(t0 + 60*40)}, cache.ID{MS: uint64(t0 + 89*40), Seq: math.MaxUint64}
	videoSec := 40 * 0.040
	for _, tc := range []struct {
		name      string
		audioMS   int64 // the first audio frame's time relative to t0
		mangle    func(i int, f []byte) []byte
		noAudio   bool
		wrongType bool    // the audio key holds a string: exported without audio
		start     float64 // the audio's start in the file, seconds
		bad       int64
		minAudio  int // audio packets at least
	}{
		{name: "audio around the video", audioMS: -500, start: 0},
		{name: "audio starting inside the window", audioMS: 2500, start: 0.5},
		{name: "audio starting 10 ms in", audioMS: 2010, start: 0.01},
		{name: "audio starting 100 ms in", audioMS: 2100, start: 0.1},
		{name: "audio starting 400 ms in", audioMS: 2400, start: 0.4},
		{name: "ADTS with CRC", audioMS: -500, start: 0, mangle: func(_ int, f []byte) []byte { return withCRC(f) }},
		{name: "garbage entries", audioMS: -500, start: 0, bad: 6, mangle: func(i int, f []byte) []byte {
			switch {
			case i%20 == 10 && i >= 130 && i < 180:
				return []byte("not audio at all")
			case i%20 == 15 && i >= 130 && i < 180:
				return f[:len(f)-1] // truncated
			}
			return f
		}},
		{name: "no audio", noAudio: true},
		{name: "audio key of another type", noAudio: true, wrongType: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cam := strings.ReplaceAll(tc.name, " ", "_")
			video.WriteCloud(t, rdb, "v_"+cam, t0, 40)
			if tc.wrongType {
				if err := rdb.Set(ctx, "a_"+cam, "not a stream", 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if !tc.noAudio {
				pipe := rdb.Pipeline()
				for i, f := range aac {
					if tc.mangle != nil {
						f = tc.mangle(i, f)
					}
					ms := t0 + tc.audioMS + int64(math.Round(float64(i)*frameSec*1000))
					pipe.XAdd(ctx, &redis.XAddArgs{Stream: "a_" + cam, ID: strconv.FormatInt(ms, 10) + "-*", Values: []any{"frame", f}})
				}
				if _, err := pipe.Exec(ctx); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(t.TempDir(), "e.mp4")
			st, err := mp4.Export(ctx, rc, cam, from, to, path, mp4.Options{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", st)
			tr := testclip.Tracks(t, path)
			v, a := tr["video"], tr["audio"]
			t.Logf("video %d packets %.3f..%.3f s, audio %d packets %.4f..%.4f s, steps other than 1024: %d", v.Packets, v.Start, v.End, a.Packets, a.Start, a.End, a.OddSteps(1024))
			if st.Frames != 40 || v.Packets != 40 || math.Abs(v.Duration()-videoSec) > 0.001 {
				t.Fatalf("video: %d frames, %+v; want 40 frames, %.3f s", st.Frames, v, videoSec)
			}
			if msg, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(msg) > 0 {
				t.Fatalf("decoding the export: %v: %s", err, msg)
			}
			if tc.noAudio {
				if len(tr) != 1 || st.AudioFrames != 0 {
					t.Fatalf("tracks %v, %d audio frames; want the video only", tr, st.AudioFrames)
				}
				return
			}
			// Back to back but for the holes the bad entries leave.
			if a.Codec != "aac" || a.SampleRate != 48000 || int64(a.Packets) != st.AudioFrames || st.AudioBad != tc.bad || int64(a.OddSteps(1024)) != tc.bad {
				t.Fatalf("audio track %s %d Hz %d packets, %d steps other than 1024, stats %+v; want aac at 48 kHz, %d bad entries", a.Codec, a.SampleRate, a.Packets, a.OddSteps(1024), st, tc.bad)
			}
			if d := a.Start - (v.Start + tc.start); math.Abs(d) > frameSec/2+0.001 {
				t.Fatalf("audio starts %.4f s from the video's start + %.1f s", d, tc.start)
			}
			if d := a.End - v.End; math.Abs(d) > frameSec/2+0.001 {
				t.Fatalf("audio ends %.4f s from the video's end", d)
			}
			// The packets present cover the span but for the skipped ones.
			want := (a.Duration())/frameSec - float64(tc.bad)
			if math.Abs(float64(a.Packets)-want) > 0.5 {
				t.Fatalf("%d audio packets over %.4f s, want %.1f", a.Packets, a.Duration(), want)
			}
		})
	}
}

// TestWriterAudioErrors: AddAudio after the first frame, WriteAudio
// without AddAudio, an invalid configuration and a garbage frame are
// errors, not panics, and the writer still closes a valid file.
func TestWriterAudioErrors(t *testing.T) {
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{})
	defer mc.Close()
	clip.Append(t, mc, "cam", 1_700_000_000_000, 40)
	pkts, err := mc.Range(context.Background(), "cam", cache.MinID, cache.MaxID, 10)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "x.mp4")
	w, err := mp4.Create(path, clip.CacheCodec(), mp4.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteAudio(1, adts(2, 3, 2, 1, false, []byte{1}, 0)); !errors.Is(err, mp4.ErrNoAudioTrack) {
		t.Fatalf("WriteAudio without a track: %v", err)
	}
	if err := w.AddAudio(mp4.AudioConfig{ObjectType: 2, SampleRate: 47000, Channels: 2}); !errors.Is(err, mp4.ErrBadADTS) {
		t.Fatalf("AddAudio at 47 kHz: %v", err)
	}
	if err := w.AddAudio(mp4.AudioConfig{ObjectType: 2, SampleRate: 48000, Channels: 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteAudio(1, []byte{0xff, 0xf1, 0xff}); !errors.Is(err, mp4.ErrBadADTS) {
		t.Fatalf("WriteAudio of garbage: %v", err)
	}
	if err := w.WriteAudio(1, adts(2, 3, 2, 1, false, []byte{1}, 0)); !errors.Is(err, mp4.ErrBadADTS) {
		t.Fatalf("WriteAudio of a stereo frame to a mono track: %v", err)
	}
	for _, p := range pkts {
		if err := w.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.AddAudio(mp4.AudioConfig{ObjectType: 2, SampleRate: 48000, Channels: 1}); !errors.Is(err, mp4.ErrAudioTooLate) {
		t.Fatalf("AddAudio after the header: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Packets != 10 || st.AudioBad != 2 || st.AudioPackets != 0 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}
