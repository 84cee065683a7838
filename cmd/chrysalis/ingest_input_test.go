package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

// A missing input file is bad input (exit 2, one line), checked before the
// ingest starts; a file FFmpeg cannot read fails once with one "ingest:"
// prefix, not two.
func TestIngestCLIInputErrors(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	bad := filepath.Join(t.TempDir(), "not-video.mp4")
	if err := os.WriteFile(bad, []byte("this is not a video"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkFailures(t, []cliFailure{
		{"missing file", []string{"ingest", "--redis-url", srv.URL(), "--camera", "c", "--input", "/nonexistent/clip.mp4"}, "", exitUsage, `camera "c": input file: stat /nonexistent/clip.mp4: no such file`},
	})
	code, stderr, _ := runIngestCLI(t, context.Background(), []string{"ingest", "--redis-url", srv.URL(), "--camera", "c", "--input", bad})
	if code != exitFailure || !strings.Contains(stderr, `chrysalis: ingest: camera "c"`) || strings.Contains(stderr, "ingest: ingest:") {
		t.Errorf("unreadable file: exit %d: %s", code, stderr)
	}
}
