package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/chryscloud/chrysalis-go/internal/testclip"
)

// export to MP4 is a remux: the file's video packets are the cached
// packets, byte for byte, in order, none missing, none repeated - for the
// whole clip and for a window starting at its second keyframe, with
// H.264, H.264 with B-frames and HEVC. The cache is written by testclip
// (raw XADDs, no code shared with the ingest) and both sides are read by
// ffprobe.
func TestExportRemuxByteExact(t *testing.T) {
	srv, rdb := startRedis(t)
	for _, name := range []string{"clip720.mp4", "bframes720.mp4", "hevc720.mp4"} {
		t.Run(name, func(t *testing.T) {
			src := testclip.Load(t, name)
			cam := "exact-" + name[:len(name)-len(filepath.Ext(name))]
			src.WriteRedis(t, rdb, cam, clipT0, 40)
			for _, w := range []struct{ from, to int }{{0, len(src.Packets) - 1}, {50, 89}} {
				out := filepath.Join(t.TempDir(), "e.mp4")
				cmd := exec.Command(ingestTestBinary(t), "export", "--camera", cam, "--from", strconv.FormatInt(clipT0+int64(w.from)*40, 10),
					"--to", strconv.FormatInt(clipT0+int64(w.to)*40, 10), "-o", out, "--json")
				cmd.Env = append(os.Environ(), "CHRYSALIS_REDIS_URL="+srv.URL())
				b, err := cmd.Output()
				if err != nil {
					var stderr []byte
					if ee, ok := err.(*exec.ExitError); ok {
						stderr = ee.Stderr
					}
					t.Fatalf("export [%d,%d]: %v: %s", w.from, w.to, err, stderr)
				}
				var e exportResult
				if err := json.Unmarshal(b, &e); err != nil {
					t.Fatalf("export --json: %v: %s", err, b)
				}
				got := testclip.Load(t, out)
				want := src.Data()[w.from : w.to+1]
				testclip.SamePackets(t, name+" exported vs cached", got.Data(), want)
				if e.Frames != int64(len(want)) {
					t.Errorf("export reports %d frames, wrote %d packets", e.Frames, len(want))
				}
				t.Logf("%s [%d,%d]: %s, byte for byte", name, w.from, w.to, testclip.Describe(got.Data()))
			}
		})
	}
}
