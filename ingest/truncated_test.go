package ingest_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/ingest"
	"github.com/chryscloud/chrysalis-go/internal/testx"
)

// TestTruncatedFileWarns: an MP4 whose media data was cut in half (its
// index, at the front, still lists 100 packets) ingests what is there,
// ends Run with nil, and says what was lost: one Warn line with the
// packets read and listed, also in Stats.LastError. The whole file says
// nothing of the kind.
func TestTruncatedFileWarns(t *testing.T) {
	requireFFmpeg(t)
	src := gopClip(t, 4)
	full := filepath.Join(t.TempDir(), "full.mp4")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", src, "-c", "copy",
		"-movflags", "+faststart", full).CombinedOutput(); err != nil {
		t.Fatalf("faststart: %v: %s", err, out)
	}
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.mp4")
	if err := os.WriteFile(cut, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, path string) (ingest.Stats, int, string) {
		var log testx.SyncBuffer
		m := cache.NewMemory(cache.Retention{})
		defer m.Close()
		in, err := ingest.New(m, ingest.Config{Camera: "f", Input: path,
			Logger: slog.New(slog.NewTextHandler(io.MultiWriter(&log, t.Output()), nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := in.Run(context.Background()); err != nil {
			t.Fatalf("Run: %v", err)
		}
		pkts, err := m.Range(context.Background(), "f", cache.MinID, cache.MaxID, 0)
		if err != nil {
			t.Fatal(err)
		}
		return in.Stats(), len(pkts), log.String()
	}
	t.Run("Whole", func(t *testing.T) {
		st, n, log := run(t, full)
		if n != 100 || strings.Contains(log, "ended early") || st.LastError != "" {
			t.Fatalf("whole file: %d cached, LastError %q, log:\n%s", n, st.LastError, log)
		}
	})
	t.Run("Cut", func(t *testing.T) {
		st, n, log := run(t, cut)
		t.Logf("cut file: %d cached; LastError %q", n, st.LastError)
		if n == 0 || n >= 100 {
			t.Fatalf("%d packets cached from half a file", n)
		}
		var line string
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, "input ended early") {
				line = l
			}
		}
		if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "listed=100") ||
			!strings.Contains(st.LastError, "of the 100 video packets its container lists") {
			t.Fatalf("no warning naming what was lost; LastError %q; log:\n%s", st.LastError, log)
		}
	})
}
