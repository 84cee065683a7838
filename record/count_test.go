package record_test

import (
	"context"
	"testing"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/record"
)

// Stats.Packets counts only packets in the archive: packets the MP4
// writer leaves out (after a gap in the numbering that an unnumbered
// packet hid from the recorder: 1, 2, 3, 0, 5) count as Skipped.
func TestStatsCountWhatIsArchived(t *testing.T) {
	clip := testclip.Load(t, "clip720.mp4") // 100 packets, keyframes 0 and 50
	mc := cache.NewMemory(cache.Retention{MaxAge: time.Hour})
	defer mc.Close()
	ctx := context.Background()
	if err := mc.SetCodec(ctx, "cam", clip.CacheCodec()); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-10 * time.Second).UnixMilli()
	for i, p := range clip.Packets {
		num := int64(i + 1)
		if i == 3 {
			num = 0 // unnumbered; packet 4 (number 4) is lost
		}
		if i == 4 {
			continue
		}
		var extra []byte
		if p.Key {
			extra = clip.Extradata
		}
		if _, err := mc.Append(ctx, "cam", &cache.Packet{Timestamp: testclip.MS(t0, i, 40), Keyframe: p.Key, Data: p.Data,
			PTS: p.PTS, DTS: p.DTS, TimeBase: clip.TimeBase, Width: clip.Width, Height: clip.Height, CodecName: clip.Codec,
			PixFmt: clip.PixFmt, Extradata: extra, Number: num}); err != nil {
			t.Fatal(err)
		}
	}
	cl := chrysalis.New(mc, chrysalis.Options{})
	defer cl.Close()
	dir := t.TempDir()
	rec, err := record.New(cl, []string{"cam"}, record.Options{Dir: dir, Always: true, PreRoll: 30 * time.Second, Segment: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "99 packets handled", func() bool { s := stats(t, rec, "cam"); return s.Packets+s.Skipped == 99 })
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := record.List(dir, "cam")
	if err != nil {
		t.Fatal(err)
	}
	var frames int64
	for _, s := range segs {
		frames += s.Frames
	}
	if s := stats(t, rec, "cam"); s.Packets != frames || s.Packets+s.Skipped != 99 {
		t.Errorf("stats %+v, %d frames in the archive", s, frames)
	}
}
