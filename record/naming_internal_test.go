package record

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The recorder never replaces a segment: with the next 1000 names taken it
// names none (and opens no segment).
func TestFreeSegmentPathNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	c := &camRec{id: "cam", dir: dir}
	const ms = 1_760_000_000_000
	if p := c.freeSegmentPath(ms); p != filepath.Join(dir, segmentName("cam", ms)) {
		t.Fatalf("free name %q", p)
	}
	for i := range uint64(1000) {
		if err := os.WriteFile(filepath.Join(dir, segmentName("cam", ms+i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if p := c.freeSegmentPath(ms); p != "" {
		t.Fatalf("all 1000 names taken, got %q: it would replace a segment", p)
	}
	os.Remove(filepath.Join(dir, segmentName("cam", ms+999)))
	if p := c.freeSegmentPath(ms); !strings.HasSuffix(p, segmentName("cam", ms+999)) {
		t.Fatalf("got %q, want the one free name", p)
	}
}

// A segment left by a killed recorder that cannot be read (here: a
// directory where the file should be) is kept and the error returned;
// one that reads but is not an MP4 plays nothing (removed by recover).
func TestReconcileKeepsUnreadable(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, ".cam_1.mp4.1.part")
	if err := os.Mkdir(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	if n, err := reconcile(bad, filepath.Join(dir, "cam_1.mp4.idx")); err == nil {
		t.Fatalf("unreadable segment: %d packets, no error: recover would delete it", n)
	}
	junk := filepath.Join(dir, ".cam_2.mp4.1.part")
	if err := os.WriteFile(junk, []byte("not an mp4"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := reconcile(junk, filepath.Join(dir, "cam_2.mp4.idx")); err != nil || n != 0 {
		t.Fatalf("unparseable segment: %d packets, %v; want 0, nil", n, err)
	}
}
