package mp4_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/mp4"
)

// A fragmented MP4 is playable before Close (as after SIGKILL) up to its
// last complete fragment, which loses at most one GOP plus the held packet.
func TestFragmentedPlayableBeforeClose(t *testing.T) {
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{})
	defer mc.Close()
	ctx := context.Background()
	clip.Append(t, mc, "cam", 1_700_000_000_000, 40)
	clip.Append(t, mc, "cam", 1_700_000_004_000, 40) // two loops: 200 packets, GOP 50
	pkts, err := mc.Range(ctx, "cam", cache.MinID, cache.MaxID, 0)
	if err != nil {
		t.Fatal(err)
	}
	const gop = 50
	dir := t.TempDir()
	path := filepath.Join(dir, "seg.mp4")
	w, err := mp4.Create(path, clip.CacheCodec(), mp4.Options{FragmentedMP4: true})
	if err != nil {
		t.Fatal(err)
	}
	const written = 175 // mid-GOP: three complete GOPs and part of the fourth
	for _, p := range pkts[:written] {
		if err := w.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	// The kill case: copy the temporary file as it is now.
	parts, _ := filepath.Glob(filepath.Join(dir, ".seg.mp4.*.part"))
	if len(parts) != 1 {
		t.Fatalf("temporary files %v", parts)
	}
	data, err := os.ReadFile(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	killed := filepath.Join(dir, "killed.mp4")
	if err := os.WriteFile(killed, data, 0o644); err != nil {
		t.Fatal(err)
	}
	info := testclip.Probe(t, killed)
	if info.Frames < written-gop-1 || info.Frames > written {
		t.Errorf("killed file plays %d frames; want %d..%d (loss at most one GOP)", info.Frames, written-gop-1, written)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if info := testclip.Probe(t, path); info.Frames != written {
		t.Errorf("closed file plays %d frames, want %d", info.Frames, written)
	}
}

func TestFragmentedExcludesFastStart(t *testing.T) {
	_, err := mp4.Options{FastStart: true, FragmentedMP4: true}.WithDefaults()
	if err == nil || !strings.Contains(err.Error(), "exclude") {
		t.Fatalf("err = %v", err)
	}
}
