package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/ingest"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

// TestIngestCloudLayout: the ingest writing a Redis cache in the cloud
// layout stores one entry per packet, field "frame" only, in Annex B with
// the parameter sets in front of every keyframe, so that the ffmpeg CLI
// given no extradata (`-f h264|hevc -i` the concatenated frames) decodes
// every frame, from the first entry and from a later keyframe, equal to
// its own decode of the clip.
func TestIngestCloudLayout(t *testing.T) {
	requireFFmpeg(t)
	srv := testredis.Start(t, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	for _, name := range []string{"clip720.mp4", "hevc720.mp4"} {
		t.Run(name, func(t *testing.T) {
			clip := testclip.Load(t, name)
			rc, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: srv.URL(), Layout: rediscache.LayoutCloud,
				StreamKey: "node_{camera}"}, rediscache.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			cam := name[:len(name)-4]
			in, err := ingest.New(rc, ingest.Config{Camera: cam, Input: clip0(name), Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			if err := start(t, in).wait(t, 30*time.Second); err != nil {
				t.Fatalf("Run: %v", err)
			}
			msgs, err := rdb.XRange(ctx, "node_"+cam, "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != len(clip.Packets) {
				t.Fatalf("%d entries, want one per packet (%d)", len(msgs), len(clip.Packets))
			}
			var all, fromSecond []byte
			second := -1
			keys := 0
			for i, m := range msgs {
				if len(m.Values) != 1 {
					t.Fatalf("entry %d has fields %v, want frame only", i, m.Values)
				}
				f := []byte(m.Values["frame"].(string))
				if !bytes.HasPrefix(f, []byte{0, 0, 1}) && !bytes.HasPrefix(f, []byte{0, 0, 0, 1}) {
					t.Fatalf("entry %d is not Annex B: % x", i, f[:min(8, len(f))])
				}
				if clip.Packets[i].Key {
					if !paramSetsFirst(clip.Codec, f) {
						t.Fatalf("keyframe entry %d has no SPS before its first slice", i)
					}
					if keys++; keys == 2 {
						second = i
					}
				}
				all = append(all, f...)
				if second >= 0 {
					fromSecond = append(fromSecond, f...)
				}
			}
			if second < 0 {
				t.Fatalf("%s has fewer than 2 keyframes", name)
			}
			ref := testclip.Reference(t, name, "bgr24", 0, 0)
			for _, tc := range []struct {
				data  []byte
				first int
			}{{all, 0}, {fromSecond, second}} {
				got := decodeRaw(t, clip.Codec, tc.data, clip.Width*clip.Height*3)
				if len(got) != len(ref)-tc.first {
					t.Fatalf("ffmpeg decoded %d frames from entry %d on, want %d", len(got), tc.first, len(ref)-tc.first)
				}
				for i := range got {
					if p := testclip.PSNR(got[i], ref[tc.first+i]); p < 40 {
						t.Fatalf("frame %d: PSNR %.1f dB", tc.first+i, p)
					}
				}
			}
		})
	}
}

func clip0(name string) string { return testclip.Path(name) }

// paramSetsFirst reports whether an SPS (H.264 type 7, HEVC type 33)
// comes before the first slice of access unit b.
func paramSetsFirst(codec string, b []byte) bool {
	for _, nal := range bytes.Split(b, []byte{0, 0, 1})[1:] {
		if len(nal) == 0 {
			continue
		}
		if codec == "hevc" {
			switch t := nal[0] >> 1 & 0x3f; {
			case t == 33:
				return true
			case t < 32:
				return false
			}
			continue
		}
		switch t := nal[0] & 0x1f; {
		case t == 7:
			return true
		case t >= 1 && t <= 5:
			return false
		}
	}
	return false
}

// decodeRaw decodes an Annex B elementary stream with the ffmpeg CLI (no
// extradata: `-f h264|hevc -i`) into bgr24 frames of size bytes.
func decodeRaw(t *testing.T, codec string, es []byte, size int) [][]byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "es."+codec), filepath.Join(dir, "out.raw")
	if err := os.WriteFile(in, es, 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command("ffmpeg", "-v", "error", "-f", codec, "-i", in, "-f", "rawvideo", "-pix_fmt", "bgr24", "-y", out).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg -f %s: %v: %s", codec, err, msg)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for len(raw) >= size {
		frames, raw = append(frames, raw[:size]), raw[size:]
	}
	return frames
}

// TestIngestCloudAudio: with the cloud layout, a clip's AAC audio goes to
// the audio stream, one ADTS frame per audio packet, stamped on the
// video's capture clock; ffprobe reads the concatenated frames with no
// extradata as AAC, and they cover the video's span within one audio frame.
func TestIngestCloudAudio(t *testing.T) {
	requireFFmpeg(t)
	av := filepath.Join(t.TempDir(), "av.mp4")
	if msg, err := exec.Command("ffmpeg", "-v", "error", "-i", clip("clip720.mp4"), "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-map", "0:v", "-map", "1:a", "-t", "4", "-c:v", "copy", "-c:a", "aac", "-b:a", "64k", av).CombinedOutput(); err != nil {
		t.Fatalf("make clip: %v: %s", err, msg)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a:0", "-count_packets", "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", av).Output()
	if err != nil {
		t.Fatal(err)
	}
	var audioPkts int
	fmt.Sscan(string(out), &audioPkts)
	srv := testredis.Start(t, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	rc, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: srv.URL(), Layout: rediscache.LayoutCloud}, rediscache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	in, err := ingest.New(rc, ingest.Config{Camera: "a", Input: av, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := start(t, in).wait(t, 30*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := in.Stats()
	video, err := rdb.XRange(ctx, "input_rtmp_stream", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	audio, err := rdb.XRange(ctx, "input_rtmp_audio_stream", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d video entries, %d audio entries (ffprobe: %d audio packets), stats %+v", len(video), len(audio), audioPkts, st)
	// Audio before the first video packet has no capture time: at most
	// the packets the demuxer interleaves ahead of it are left out.
	if len(audio) < audioPkts-2 || len(audio) > audioPkts || st.AudioWritten != int64(len(audio)) || st.AudioDropped != 0 {
		t.Fatalf("%d audio entries (stats %d written, %d dropped), want ~%d", len(audio), st.AudioWritten, st.AudioDropped, audioPkts)
	}
	// The cache reads them back in a window.
	frames, err := rc.AudioRange(ctx, "a", cache.MinID, cache.MaxID, 0)
	if err != nil || len(frames) != len(audio) || frames[0].ID.String() != audio[0].ID {
		t.Fatalf("AudioRange: %d frames, err %v, want %d", len(frames), err, len(audio))
	}
	if half, err := rc.AudioRange(ctx, "a", frames[10].ID, frames[19].ID, 0); err != nil || len(half) != 10 {
		t.Fatalf("AudioRange of 10 frames: %d err %v", len(half), err)
	}
	var aac []byte
	for i, m := range audio {
		f := []byte(m.Values["frame"].(string))
		if len(f) < 7 || f[0] != 0xff || f[1]&0xf0 != 0xf0 || int(f[3]&3)<<11|int(f[4])<<3|int(f[5]>>5) != len(f) {
			t.Fatalf("audio entry %d is not one ADTS frame: % x... (%d bytes)", i, f[:min(7, len(f))], len(f))
		}
		aac = append(aac, f...)
	}
	es := filepath.Join(t.TempDir(), "a.aac")
	if err := os.WriteFile(es, aac, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command("ffprobe", "-v", "error", "-f", "aac", "-count_frames", "-show_entries", "stream=codec_name,sample_rate,nb_read_frames", "-of", "csv=p=0", es).Output()
	if err != nil || !strings.Contains(string(out), "aac,48000,"+fmt.Sprint(len(audio))) {
		t.Fatalf("ffprobe of the audio frames: %v: %q, want aac,48000,%d", err, out, len(audio))
	}
	msOf := func(id string) int64 { c, _ := cache.ParseID(id); return int64(c.MS) }
	const frameMS = 1024 * 1000 / 48000 // 21 ms
	v0, v1 := msOf(video[0].ID), msOf(video[len(video)-1].ID)+40
	a0, a1 := msOf(audio[0].ID), msOf(audio[len(audio)-1].ID)+frameMS
	if d := a0 - v0; d < -frameMS || d > frameMS {
		t.Fatalf("audio starts %d ms from the video", d)
	}
	if d := a1 - v1; d < -frameMS-1 || d > frameMS+1 {
		t.Fatalf("audio ends %d ms from the video (audio %d..%d, video %d..%d)", d, a0, a1, v0, v1)
	}
	// Each frame at its own time: 1024 samples after the one before.
	for i, m := range audio {
		want := float64(a0) + float64(i)*1024*1000/48000
		if d := float64(msOf(m.ID)) - want; d < -1.5 || d > 1.5 {
			t.Fatalf("audio entry %d at %d ms, want %.1f", i, msOf(m.ID), want)
		}
	}
}
