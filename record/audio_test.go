package record_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/chryscloud/chrysalis-go/record"
)

// TestRecordAudio: recording a cloud-layout camera with audio (video and
// AAC written by raw XADDs on one clock) gives segments that each carry
// an AAC track covering their video within half an audio frame at both
// ends, back to back (no frame lost or doubled at the cut between them).
func TestRecordAudio(t *testing.T) {
	testclip.RequireFFmpeg(t)
	srv := testredis.Start(t, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "5", "-c:a", "aac", "-b:a", "64k", "-f", "adts", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg aac: %v", err)
	}
	// 100 frames of 40 ms (keyframes 0 and 50) ending 6 s ago, and audio
	// from 300 ms before the first to past the last.
	t0 := time.Now().Add(-10 * time.Second).UnixMilli()
	testclip.LoadAnnexB(t, "clip720.mp4").WriteCloud(t, rdb, "input_rtmp_stream", t0, 40)
	pipe := rdb.Pipeline()
	for i := 0; len(out) >= 7; i++ {
		n := int(out[3]&3)<<11 | int(out[4])<<3 | int(out[5]>>5)
		ms := t0 - 300 + int64(math.Round(float64(i)*1024*1000/48000))
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: "input_rtmp_audio_stream", ID: strconv.FormatInt(ms, 10) + "-*", Values: []any{"frame", out[:n]}})
		out = out[n:]
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	rc, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: srv.URL(), Layout: rediscache.LayoutCloud}, rediscache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	cl := chrysalis.New(rc, chrysalis.Options{})
	defer cl.Close()
	dir := t.TempDir()
	rec, err := record.New(cl, []string{"cam"}, record.Options{Dir: dir, Always: true, PreRoll: 30 * time.Second, Segment: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "100 packets recorded", func() bool { return stats(t, rec, "cam").Packets == 100 })
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segments(t, dir, "cam")
	if len(segs) != 2 {
		t.Fatalf("%d segments, want 2 (cut at the keyframe 50)", len(segs))
	}
	const frameSec = 1024.0 / 48000
	var audio int
	for i, s := range segs {
		tr := testclip.Tracks(t, s.Path)
		v, a := tr["video"], tr["audio"]
		t.Logf("segment %d: video %d packets %.4f..%.4f s, audio %d packets %.4f..%.4f s, %d steps other than 1024",
			i, v.Packets, v.Start, v.End, a.Packets, a.Start, a.End, a.OddSteps(1024))
		// The fragmented MP4 moves the first audio frame to the video's
		// start (no edit list): its step may be off by half a frame.
		if v.Packets != 50 || a.Codec != "aac" || len(a.Steps) == 0 || a.OddSteps(1024) > 1 || math.Abs(float64(a.Steps[0]-1024)) > 512 {
			t.Fatalf("segment %d: want 50 video packets and a continuous AAC track", i)
		}
		if math.Abs(a.Start-v.Start) > frameSec/2+0.001 || math.Abs(a.End-v.End) > frameSec/2+0.001 {
			t.Fatalf("segment %d: audio %.4f..%.4f s, video %.4f..%.4f s: more than half a frame apart", i, a.Start, a.End, v.Start, v.End)
		}
		audio += a.Packets
	}
	// Together the segments hold the audio of the 4 s of video once.
	if want := 4.0 / frameSec; math.Abs(float64(audio)-want) > 1 {
		t.Fatalf("%d audio packets in all, want %.1f", audio, want)
	}
}

// Malformed audio entries left out of a segment are counted in a Warn at
// the segment's end (not only the first one logged).
func TestRecordAudioBadCounted(t *testing.T) {
	testclip.RequireFFmpeg(t)
	srv := testredis.Start(t, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "5", "-c:a", "aac", "-b:a", "64k", "-f", "adts", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg aac: %v", err)
	}
	t0 := time.Now().Add(-10 * time.Second).UnixMilli()
	testclip.LoadAnnexB(t, "clip720.mp4").WriteCloud(t, rdb, "input_rtmp_stream", t0, 40)
	pipe := rdb.Pipeline()
	bad := 0
	for i := 0; len(out) >= 7; i++ {
		n := int(out[3]&3)<<11 | int(out[4])<<3 | int(out[5]>>5)
		ms := t0 - 300 + int64(math.Round(float64(i)*1024*1000/48000))
		f := out[:n]
		if i%20 == 10 && ms > t0+200 && ms < t0+1800 { // inside the first segment's video
			f, bad = []byte("not audio"), bad+1
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: "input_rtmp_audio_stream", ID: strconv.FormatInt(ms, 10) + "-*", Values: []any{"frame", f}})
		out = out[n:]
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	rc, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: srv.URL(), Layout: rediscache.LayoutCloud}, rediscache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	cl := chrysalis.New(rc, chrysalis.Options{})
	defer cl.Close()
	var logs syncBuffer
	rec, err := record.New(cl, []string{"cam"}, record.Options{Dir: t.TempDir(), Always: true, PreRoll: 30 * time.Second,
		Segment: time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "100 packets recorded", func() bool { return stats(t, rec, "cam").Packets == 100 })
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("audio_bad=%d", bad); bad == 0 || !strings.Contains(logs.String(), want) {
		t.Errorf("no Warn with %s in %q", want, logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
