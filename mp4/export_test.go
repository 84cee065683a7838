package mp4_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/mp4"
)

// An export cut short by a codec change inside the window is not silent:
// ExportStats.CutMS names the change and a Warn says the rest is missing.
func TestExportCutAtCodecChange(t *testing.T) {
	mc := cache.NewMemory(cache.Retention{MaxAge: time.Hour})
	defer mc.Close()
	const t0 = int64(1_700_000_000_000)
	small := testclip.Load(t, "clip720.mp4")
	big := testclip.Load(t, "clip1080.mp4")
	ids := small.Append(t, mc, "c", t0, 40)
	last := ids[len(ids)-1]
	big.Append(t, mc, "c", int64(last.MS)+40, 40)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	st, err := mp4.Export(context.Background(), mc, "c", cache.ID{MS: uint64(t0)}, cache.MaxID,
		filepath.Join(t.TempDir(), "c.mp4"), mp4.Options{Logger: log}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Frames != int64(len(ids)) || st.CutMS != int64(last.MS)+40 {
		t.Errorf("stats %+v, want %d frames, cut at %d", st, len(ids), int64(last.MS)+40)
	}
	if s := logs.String(); !strings.Contains(s, "level=WARN") || !strings.Contains(s, "codec change") {
		t.Errorf("no Warn about the cut: %q", s)
	}
}
