package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/chryscloud/chrysalis-go/internal/testclip"
)

// export -o DIR/ over a burst cache (the clip's 100 packets XADDed in one
// millisecond) writes one file per decoded frame, named by cache id, and
// never replaces a file, also when run twice into the same directory.
func TestExportImagesBurst(t *testing.T) {
	srv, rdb := startRedis(t)
	testclip.Load(t, "clip720.mp4").WriteRedis(t, rdb, "burst", clipT0, 0)
	xlen, err := rdb.XLen(t.Context(), "in_memory_queue_burst").Result()
	if err != nil || xlen != 100 {
		t.Fatalf("XLEN %d %v, want 100", xlen, err)
	}
	dir := filepath.Join(t.TempDir(), "frames") + "/"
	ms := strconv.FormatInt(clipT0, 10)
	export := func() exportResult {
		t.Helper()
		cmd := exec.Command(ingestTestBinary(t), "export", "--camera", "burst", "--from", ms, "--to", ms, "-o", dir, "--json")
		cmd.Env = append(os.Environ(), "CHRYSALIS_REDIS_URL="+srv.URL())
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("export: %v: %s", err, stderr)
		}
		var e exportResult
		if err := json.Unmarshal(out, &e); err != nil {
			t.Fatalf("export --json: %v: %s", err, out)
		}
		return e
	}
	files := func() []string {
		t.Helper()
		f, err := filepath.Glob(filepath.Join(dir, "*.jpg"))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	e := export()
	got := files()
	t.Logf("burst cache of %d packets in one ms: %d frames decoded, %d files reported, %d on disk", xlen, e.Frames, e.Files, len(got))
	// The CLI's own count: one file per decoded frame, and every one on disk.
	if e.Files != e.Frames || int64(len(got)) != e.Frames {
		t.Fatalf("%d frames decoded, %d files reported, %d files on disk", e.Frames, e.Files, len(got))
	}
	name := regexp.MustCompile(`^burst_` + ms + `-(\d+)\.jpg$`)
	seqs := map[string]bool{}
	for _, f := range got {
		m := name.FindStringSubmatch(filepath.Base(f))
		if m == nil {
			t.Fatalf("file %s: want burst_%s-<seq>.jpg", filepath.Base(f), ms)
		}
		seqs[m[1]] = true
	}
	if int64(len(seqs)) != e.Frames {
		t.Fatalf("%d distinct cache ids among %d files", len(seqs), e.Frames)
	}

	// A second run into the same directory adds files; it replaces none.
	before := map[string]os.FileInfo{}
	for _, f := range got {
		fi, _ := os.Stat(f)
		before[f] = fi
	}
	e2 := export()
	if again := files(); e2.Files != e2.Frames || len(again) != len(got)+int(e2.Files) {
		t.Fatalf("second run: %d frames, %d files reported, %d files on disk (had %d)", e2.Frames, e2.Files, len(again), len(got))
	}
	for f, fi := range before {
		now, err := os.Stat(f)
		if err != nil || !os.SameFile(fi, now) || now.ModTime() != fi.ModTime() {
			t.Fatalf("%s was replaced by the second run", f)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("burst_%s-0_2.jpg", ms))); err != nil {
		t.Fatalf("second run: %v, want the taken name with _2", err)
	}

	// Without --json it says how many files it wrote.
	cmd := exec.Command(ingestTestBinary(t), "export", "--camera", "burst", "--from", ms, "--to", ms, "-o", t.TempDir()+"/")
	cmd.Env = append(os.Environ(), "CHRYSALIS_REDIS_URL="+srv.URL())
	out, err := cmd.Output()
	if want := fmt.Sprintf(": %d frames of burst (images, %d files written, ", e.Frames, e.Frames); err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("export text: %v %q, want %q", err, out, want)
	}

	// Every packet is a frame: needs Camera.Past to yield one frame per
	// packet on a burst cache (issue 9, the library's part).
	if e.Frames != xlen {
		t.Errorf("%d frames for %d packets in the window", e.Frames, xlen)
	}
}
