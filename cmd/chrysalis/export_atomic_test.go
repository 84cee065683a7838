package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/chryscloud/chrysalis-go/internal/testclip"
)

// A failed MP4 export leaves -o as it was (here an older file) and no
// temporary file beside it; a successful one replaces it whole.
func TestExportMP4Atomic(t *testing.T) {
	srv := redisWithClip(t)
	env := "CHRYSALIS_REDIS_URL=" + srv.URL()
	dir := t.TempDir()
	out := filepath.Join(dir, "clip.mp4")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkDir := func(want string) {
		t.Helper()
		b, _ := os.ReadFile(out)
		if want != "" && string(b) != want {
			t.Fatalf("-o holds %d bytes, want %q", len(b), want)
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 1 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Fatalf("dir holds %v, want only clip.mp4", names)
		}
	}
	// A window past the cache fails (exit 4) after the export started.
	code, stderr, _ := runIngestCLI(t, context.Background(), []string{"export", "--camera", "cam", "--from",
		strconv.FormatInt(clipT0+200*40, 10), "--to", strconv.FormatInt(clipT0+300*40, 10), "-o", out}, env)
	if code != exitNotFound {
		t.Fatalf("empty window: exit %d: %s", code, stderr)
	}
	checkDir("old")
	code, stderr, _ = runIngestCLI(t, context.Background(), []string{"export", "--camera", "cam", "--from",
		strconv.FormatInt(clipT0, 10), "--to", strconv.FormatInt(clipT0+99*40, 10), "-o", out}, env)
	if code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	checkDir("")
	if info := testclip.Probe(t, out); info.Frames != 100 {
		t.Fatalf("exported %+v, want 100 frames", info)
	}
}
