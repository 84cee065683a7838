package main

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
)

// TestExportAudioCLI: a clip with AAC audio (ffmpeg lavfi testsrc + sine,
// -c:a aac) ingested by `chrysalis ingest --layout cloud` and exported by
// `chrysalis export` gives an MP4 with an AAC track that ffprobe reads,
// whose duration and start are within one audio frame (1024 samples) of
// the video's, and which ffmpeg decodes without an error.
func TestExportAudioCLI(t *testing.T) {
	testclip.RequireFFmpeg(t)
	dir := t.TempDir()
	clip := filepath.Join(dir, "av.mp4")
	if msg, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", clip).CombinedOutput(); err != nil {
		t.Fatalf("making the clip: %v: %s", err, msg)
	}
	srv, rdb := startRedis(t)
	env := "CHRYSALIS_REDIS_URL=" + srv.URL()
	if code, stderr, _ := runIngestCLI(t, t.Context(), []string{"ingest", "--camera", "cam", "--input", clip, "--layout", "cloud"}, env); code != 0 {
		t.Fatalf("ingest: exit %d: %s", code, stderr)
	}
	video, err := rdb.XRange(t.Context(), "input_rtmp_stream", "-", "+").Result()
	if err != nil || len(video) != 100 {
		t.Fatalf("%d video entries, err %v", len(video), err)
	}
	if n, err := rdb.XLen(t.Context(), "input_rtmp_audio_stream").Result(); err != nil || n < 180 {
		t.Fatalf("%d audio entries, err %v", n, err)
	}
	ms := func(i int) string { id, _ := cache.ParseID(video[i].ID); return strconv.FormatUint(id.MS, 10) }
	out := filepath.Join(dir, "e.mp4")
	// Frames 30..79: the file starts at the keyframe 25.
	cmd := exec.Command(ingestTestBinary(t), "export", "--camera", "cam", "--layout", "cloud", "--from", ms(30), "--to", ms(79), "-o", out, "--json")
	cmd.Env = append(os.Environ(), env)
	js, err := cmd.Output()
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	var res exportResult
	if err := json.Unmarshal(js, &res); err != nil || res.Frames != 55 || res.AudioFrames == 0 {
		t.Fatalf("export: %s (%v), want 55 frames and audio", js, err)
	}
	tr := testclip.Tracks(t, out)
	v, a := tr["video"], tr["audio"]
	t.Logf("%s\nvideo %d packets %.4f..%.4f s, audio %d packets %.4f..%.4f s, %d steps other than 1024", js, v.Packets, v.Start, v.End, a.Packets, a.Start, a.End, a.OddSteps(1024))
	const frameSec = 1024.0 / 48000
	if v.Packets != 55 || a.Codec != "aac" || a.SampleRate != 48000 || int64(a.Packets) != res.AudioFrames || a.OddSteps(1024) != 0 {
		t.Fatalf("tracks: video %d packets, audio %s %d Hz %d packets, %d steps other than 1024; want 55 frames and a continuous AAC track", v.Packets, a.Codec, a.SampleRate, a.Packets, a.OddSteps(1024))
	}
	if d := a.Duration() - v.Duration(); math.Abs(d) > frameSec {
		t.Fatalf("audio lasts %.4f s, video %.4f s: %.4f s apart, more than one audio frame", a.Duration(), v.Duration(), d)
	}
	if d := a.Start - v.Start; math.Abs(d) > frameSec {
		t.Fatalf("audio starts at %.4f s, video at %.4f s", a.Start, v.Start)
	}
	// The same by ffprobe's stream fields.
	t.Logf("stream fields: video start %.4f duration %.4f, audio start %.4f duration %.4f", v.StreamStart, v.StreamDuration, a.StreamStart, a.StreamDuration)
	if !(math.Abs(a.StreamDuration-v.StreamDuration) <= frameSec && math.Abs(a.StreamStart-v.StreamStart) <= frameSec) {
		t.Fatalf("ffprobe stream fields: video start %.4f duration %.4f, audio start %.4f duration %.4f: more than a frame apart",
			v.StreamStart, v.StreamDuration, a.StreamStart, a.StreamDuration)
	}
	if msg, err := exec.Command("ffmpeg", "-v", "error", "-i", out, "-f", "null", "-").CombinedOutput(); err != nil || len(msg) > 0 {
		t.Fatalf("decoding the export: %v: %s", err, msg)
	}
}
