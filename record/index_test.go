package record_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/mp4"
	"github.com/chryscloud/chrysalis-go/record"
)

// feed appends n packets of clip (looping) to c as camera cam, 40 ms
// apart from t0, numbered from 1, keyframes carrying the extradata (as the
// ingest writes them), and returns them with their ids.
func feed(t *testing.T, c cache.Cache, clip *testclip.Clip, cam string, t0 int64, n int) []cache.Packet {
	t.Helper()
	ctx := context.Background()
	if err := c.SetCodec(ctx, cam, clip.CacheCodec()); err != nil {
		t.Fatal(err)
	}
	out := make([]cache.Packet, n)
	for i := range n {
		p := clip.Packets[i%len(clip.Packets)]
		var extra []byte
		if p.Key {
			extra = clip.Extradata
		}
		q := cache.Packet{Timestamp: t0 + int64(i)*40, Keyframe: p.Key, Data: p.Data, PTS: p.PTS, DTS: p.DTS,
			TimeBase: clip.TimeBase, Width: clip.Width, Height: clip.Height, CodecName: clip.Codec, PixFmt: clip.PixFmt,
			Extradata: extra, Number: int64(i + 1)}
		id, err := c.Append(ctx, cam, &q)
		if err != nil {
			t.Fatal(err)
		}
		q.ID = id
		out[i] = q
	}
	return out
}

type shownPacket struct {
	PTS      int64  `json:"pts"`
	DTS      int64  `json:"dts"`
	Size     string `json:"size"`
	Flags    string `json:"flags"`
	DataHash string `json:"data_hash"`
}

// showPackets is ffprobe -show_packets of a file's video: times, size,
// flags and an MD5 of the data.
func showPackets(t *testing.T, path string) []shownPacket {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_data_hash", "MD5",
		"-show_entries", "packet=pts,dts,size,flags,data_hash", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var po struct{ Packets []shownPacket }
	if err := json.Unmarshal(out, &po); err != nil {
		t.Fatal(err)
	}
	return po.Packets
}

// recordAll records every packet of cam in c into a new archive and
// returns its directory.
func recordAll(t *testing.T, c cache.Cache, cam string, want int64) string {
	t.Helper()
	cl := chrysalis.New(c, chrysalis.Options{})
	defer cl.Close()
	dir := t.TempDir()
	rec, err := record.New(cl, []string{cam}, record.Options{Dir: dir, Always: true, Segment: time.Second,
		PreRoll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	eventually(t, 10*time.Second, "all packets recorded", func() bool { return stats(t, rec, cam).Packets == want })
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The index lists every segment with its first and last packet, frames and
// size, matching what was cached.
func TestList(t *testing.T) {
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{})
	defer mc.Close()
	pkts := feed(t, mc, clip, "cam", time.Now().Add(-time.Minute).UnixMilli(), 230)
	dir := recordAll(t, mc, "cam", 230)
	segs, err := record.List(dir, "cam")
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 5 { // GOPs of 50: 50, 50, 50, 50, 30
		t.Fatalf("%d segments, want 5: %+v", len(segs), segs)
	}
	i := 0
	for _, s := range segs {
		first, last := pkts[i], pkts[i+int(s.Frames)-1]
		if s.First != first.ID || s.Last != last.ID || !s.Start.Equal(first.ID.Time()) || !s.End.Equal(last.ID.Time()) {
			t.Errorf("%s: %v..%v (%v..%v), cached packets %v..%v", filepath.Base(s.Path), s.First, s.Last, s.Start, s.End,
				first.ID, last.ID)
		}
		if n := int64(len(probePackets(t, s.Path))); n != s.Frames || s.Keyframes != 1 {
			t.Errorf("%s: index says %d frames, %d keyframes; ffprobe reads %d", s.Path, s.Frames, s.Keyframes, n)
		}
		if fi, err := os.Stat(s.Path); err != nil || fi.Size() != s.Size {
			t.Errorf("%s: size %d, file %v %v", s.Path, s.Size, fi, err)
		}
		i += int(s.Frames)
	}
	if i != len(pkts) {
		t.Errorf("segments hold %d packets, %d cached", i, len(pkts))
	}
	// A last line cut short (a kill during its write) is ignored; a broken
	// line before the last is an error.
	idx0 := strings.TrimSuffix(segs[0].Path, ".mp4") + ".idx"
	f, err := os.OpenFile(idx0, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"id":"17`)
	f.Close()
	if got, err := record.List(dir, "cam"); err != nil || got[0].Frames != segs[0].Frames {
		t.Errorf("index with a cut last line: %+v, %v", got[0], err)
	}
	if err := os.WriteFile(idx0, []byte("{}\n{\"id\":\"1-0\",\"n\":1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := record.List(dir, "cam"); err == nil || len(got) != 4 {
		t.Errorf("broken index: %d segments, %v", len(got), err)
	}
	if _, err := record.List(dir, "nope"); err == nil {
		t.Error("List of a camera never recorded: no error")
	}
	// A segment whose index is gone is reported, the others listed.
	if err := os.Remove(filepath.Join(dir, "cam", filepath.Base(segs[1].Path[:len(segs[1].Path)-4])+".idx")); err != nil {
		t.Fatal(err)
	}
	got, err := record.List(dir, "cam")
	if !errors.Is(err, record.ErrNoIndex) || len(got) != 3 {
		t.Errorf("List without one index: %d segments, %v", len(got), err)
	}
}

// Export of a window the cache has trimmed, wholly or in part, comes from
// the archive: the same packets (times, sizes, flags, data) as the export
// of that window from the cache before the trim.
func TestArchiveExportFrameExact(t *testing.T) {
	for _, tc := range []struct{ name string }{{"clip720.mp4"}, {"bframes720.mp4"}, {"reschange.ts"}} {
		t.Run(tc.name, func(t *testing.T) {
			clip := testclip.Load(t, tc.name)
			if tc.name == "reschange.ts" {
				// Annex-B packets (the MP4 holds them length-prefixed);
				// the first 640x360 GOP, looped.
				clip.Packets = clip.Packets[:100]
			}
			full := cache.NewMemory(cache.Retention{})
			defer full.Close()
			t0 := time.Now().Add(-time.Minute).UnixMilli()
			const n = 400 // 16 s; segments of one GOP
			pkts := feed(t, full, clip, "cam", t0, n)
			dir := recordAll(t, full, "cam", n)
			// The same packets into a cache that keeps the newest 150:
			// packets 0..249 are trimmed from it.
			trimmed := cache.NewMemory(cache.Retention{MaxLen: 150})
			defer trimmed.Close()
			feed(t, trimmed, clip, "cam", t0, n)
			ctx := context.Background()
			if got, _ := trimmed.Range(ctx, "cam", cache.MinID, cache.MaxID, 1); len(got) != 1 || got[0].ID != pkts[250].ID {
				t.Fatalf("trimmed cache starts at %v, want %v", got, pkts[250].ID)
			}
			ac := record.WithArchive(trimmed, dir)
			for _, w := range []struct {
				name     string
				from, to int
			}{
				{"archive only", 60, 180},       // from the keyframe at 50
				{"archive and cache", 210, 330}, // keyframe 200: 50 archived, 130 cached
				{"to the newest", 240, 399},
				{"cache only", 300, 350},
			} {
				t.Run(w.name, func(t *testing.T) {
					lo, hi := pkts[w.from].ID, pkts[w.to].ID
					want := filepath.Join(t.TempDir(), "cache.mp4")
					if _, err := mp4.Export(ctx, full, "cam", lo, hi, want, mp4.Options{}, nil); err != nil {
						t.Fatal(err)
					}
					got := filepath.Join(t.TempDir(), "archive.mp4")
					st, err := mp4.Export(ctx, ac, "cam", lo, hi, got, mp4.Options{}, nil)
					if err != nil {
						t.Fatal(err)
					}
					kf := w.from
					for !pkts[kf].Keyframe {
						kf--
					}
					if st.Frames != int64(w.to-kf+1) || st.FirstMS != int64(pkts[kf].ID.MS) || st.LastMS != int64(hi.MS) {
						t.Errorf("export %+v, want %d frames from packet %d", st, w.to-kf+1, kf)
					}
					a, b := showPackets(t, want), showPackets(t, got)
					if len(a) != len(b) || len(a) != w.to-kf+1 {
						t.Fatalf("cache export %d packets, archive export %d, want %d", len(a), len(b), w.to-kf+1)
					}
					for i := range a {
						if a[i] != b[i] {
							t.Fatalf("packet %d: cache export %+v, archive export %+v", i, a[i], b[i])
						}
					}
				})
			}
			// Before anything was archived: nothing.
			_, err := mp4.Export(ctx, ac, "cam", cache.IDAt(time.UnixMilli(t0-10_000)), cache.IDAt(time.UnixMilli(t0-5_000)),
				filepath.Join(t.TempDir(), "none.mp4"), mp4.Options{}, nil)
			if !errors.Is(err, cache.ErrNotFound) {
				t.Errorf("export before the archive: %v, want ErrNotFound", err)
			}
		})
	}
}
