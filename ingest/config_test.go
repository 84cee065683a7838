package ingest_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/ingest"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  ingest.Config
		want string // substring of the error; "" = valid
	}{
		{"ok file", ingest.Config{Camera: "c", Input: "clip.mp4"}, ""},
		{"ok listen", ingest.Config{Camera: "c", Input: "rtmp://0.0.0.0:1935/live/c", Listen: true}, ""},
		{"no camera", ingest.Config{Input: "x.mp4"}, "no camera id"},
		{"space in camera", ingest.Config{Camera: "a b", Input: "x.mp4"}, "whitespace"},
		{"no input", ingest.Config{Camera: "c"}, "no input"},
		{"listen on a file", ingest.Config{Camera: "c", Input: "x.mp4", Listen: true}, "Listen needs a URL"},
		{"listen and loop", ingest.Config{Camera: "c", Input: "rtmp://h/live/c", Listen: true, Loop: true}, "Loop"},
		{"negative buffer", ingest.Config{Camera: "c", Input: "x.mp4", Buffer: -time.Second}, "negative Buffer"},
		{"backoff order", ingest.Config{Camera: "c", Input: "x.mp4", BackoffMin: time.Minute, BackoffMax: time.Second}, "BackoffMin"},
		{"unknown format", ingest.Config{Camera: "c", Input: "x", Format: "nope-format"}, "unknown input format"},
		{"empty option", ingest.Config{Camera: "c", Input: "x", InputOptions: map[string]string{"": "1"}}, "empty input option"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
			if _, err := ingest.New(cache.NewMemory(cache.Retention{}), tc.cfg); err == nil {
				t.Fatalf("New accepted an invalid config")
			}
		})
	}
	if _, err := ingest.New(nil, ingest.Config{Camera: "c", Input: "x"}); err == nil {
		t.Fatal("New accepted a nil cache")
	}
}

func TestValidateAll(t *testing.T) {
	if err := ingest.ValidateAll(nil); err == nil {
		t.Fatal("no cameras accepted")
	}
	dup := []ingest.Config{{Camera: "a", Input: "x.mp4"}, {Camera: "a", Input: "y.mp4"}}
	if err := ingest.ValidateAll(dup); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate camera: %v", err)
	}
	port := []ingest.Config{
		{Camera: "a", Input: "rtmp://0.0.0.0:1935/live/a", Listen: true},
		{Camera: "b", Input: "rtmp://0.0.0.0:1935/live/b", Listen: true},
	}
	if err := ingest.ValidateAll(port); err == nil || !strings.Contains(err.Error(), "own port") {
		t.Fatalf("shared listen port: %v", err)
	}
}

// TestRunAllTwoCameras: two files into one cache from one process.
func TestRunAllTwoCameras(t *testing.T) {
	requireFFmpeg(t)
	m := cache.NewMemory(cache.Retention{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := ingest.RunAll(ctx, m, []ingest.Config{
		{Camera: "a", Input: clip("clip720.mp4"), Logger: testLogger(t)},
		{Camera: "b", Input: clip("clip1080.mp4"), Logger: testLogger(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	for cam, w := range map[string]int{"a": 1280, "b": 1920} {
		st, err := m.Stats(ctx, cam)
		if err != nil {
			t.Fatal(err)
		}
		cd, _ := m.Codec(ctx, cam)
		if st.Frames != 100 || st.Keyframes != 2 || cd.Width != w {
			t.Fatalf("camera %s: %+v, codec %+v", cam, st, cd)
		}
	}
	// A file that does not exist is an error, not a retry loop.
	err = ingest.RunAll(ctx, m, []ingest.Config{{Camera: "c", Input: "no/such/file.mp4", Logger: testLogger(t)}})
	if err == nil || !strings.Contains(err.Error(), "no/such/file.mp4") {
		t.Fatalf("missing file: %v", err)
	}
}

// TestResolutionChangeRewritesCodec: an MPEG-TS stream whose resolution
// changes mid-stream (in-band SPS/PPS) gets its codec info written again,
// and the packets after the change carry the new size.
func TestResolutionChangeRewritesCodec(t *testing.T) {
	requireFFmpeg(t)
	m := cache.NewMemory(cache.Retention{})
	in, err := ingest.New(m, ingest.Config{Camera: "rc", Input: clip("reschange.ts"), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	pkts, err := m.Range(context.Background(), "rc", cache.MinID, cache.MaxID, 0)
	if err != nil {
		t.Fatal(err)
	}
	cd, err := m.Codec(context.Background(), "rc")
	if err != nil {
		t.Fatal(err)
	}
	st := in.Stats()
	sizes := map[[2]int]int{}
	for _, p := range pkts {
		sizes[[2]int{p.Width, p.Height}]++
	}
	t.Logf("%d packets, sizes %v, codec writes %d, final codec %dx%d (%d bytes extradata)",
		len(pkts), sizes, st.CodecWrites, cd.Width, cd.Height, len(cd.Extradata))
	if len(pkts) != 100 {
		t.Fatalf("%d packets", len(pkts))
	}
	var keyExtra [][]byte
	for _, p := range pkts {
		if p.Keyframe {
			keyExtra = append(keyExtra, p.Extradata)
		}
	}
	if len(keyExtra) != 2 || bytes.Equal(keyExtra[0], keyExtra[1]) || !bytes.Equal(keyExtra[1], cd.Extradata) {
		t.Fatalf("keyframe extradata %x / %x, codec %x: want the new SPS/PPS after the change", keyExtra[0], keyExtra[len(keyExtra)-1], cd.Extradata)
	}
	if w, h, err := decodeFirstKeyframe(cd, pkts[50].Data); err != nil || w != 1280 || h != 720 {
		t.Fatalf("decode the keyframe after the change: %dx%d %v", w, h, err)
	}
	if st.CodecWrites < 2 || cd.Width != 1280 || cd.Height != 720 || sizes[[2]int{1280, 720}] == 0 {
		t.Fatalf("the resolution change was not recorded: codec writes %d, codec %dx%d", st.CodecWrites, cd.Width, cd.Height)
	}
}
