package record

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// timeLayout names a segment's start; fixed width, so names sort by time.
const timeLayout = "20060102T150405.000Z"

// segmentName is "<camera>_<start>.mp4".
func segmentName(cam string, ms uint64) string {
	return cam + "_" + time.UnixMilli(int64(ms)).UTC().Format(timeLayout) + ".mp4"
}

// Segment is a finished segment file.
type Segment struct {
	Path  string
	Start time.Time
	Size  int64
}

// Segments lists camera cam's finished segments in dir (Dir/<camera>),
// oldest first.
func Segments(dir, cam string) ([]Segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Segment
	prefix := cam + "_"
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ".mp4") {
			continue
		}
		t, err := time.Parse(timeLayout, strings.TrimSuffix(strings.TrimPrefix(name, prefix), ".mp4"))
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, Segment{Path: filepath.Join(dir, name), Start: t, Size: info.Size()})
	}
	slices.SortFunc(out, func(a, b Segment) int { return a.Start.Compare(b.Start) })
	return out, nil
}

// retain deletes the finished segments past KeepAge and KeepBytes.
func (c *camRec) retain(now time.Time) {
	if c.o.KeepAge <= 0 && c.o.KeepBytes <= 0 {
		return
	}
	segs, err := Segments(c.dir, c.id)
	if err != nil {
		c.log.Warn("record: listing segments failed", "err", err)
		return
	}
	var total int64
	for _, s := range segs {
		total += s.Size
	}
	for _, s := range segs {
		old := c.o.KeepAge > 0 && s.Start.Before(now.Add(-c.o.KeepAge))
		big := c.o.KeepBytes > 0 && total > c.o.KeepBytes
		if !old && !big {
			break
		}
		if err := errors.Join(os.Remove(s.Path), removeIfExists(indexPath(s.Path))); err != nil {
			c.log.Warn("record: deleting a segment failed", "file", s.Path, "err", err)
			continue
		}
		total -= s.Size
		c.deleted.Add(1)
	}
}

// recover renames segments a killed recorder left under their temporary
// names (".<name>.mp4.*.part", fragmented, playable up to their last
// fragment) into place, unless a finished file of that name exists, and
// cuts their index to the packets they play. A file that plays nothing is
// removed with its index.
func (c *camRec) recover() {
	parts, _ := filepath.Glob(filepath.Join(c.dir, "."+c.id+"_*.mp4.*.part"))
	for _, p := range parts {
		base := filepath.Base(p)
		name := base[1 : strings.Index(base, ".mp4.")+len(".mp4")]
		dst := filepath.Join(c.dir, name)
		if _, err := os.Stat(dst); err == nil {
			continue
		}
		n, err := reconcile(p, indexPath(dst))
		if err == nil && n == 0 {
			c.log.Info("record: removed an empty segment left by a killed recorder", "file", p)
			err = errors.Join(os.Remove(p), removeIfExists(indexPath(dst)))
			if err == nil {
				continue
			}
		}
		if err == nil {
			err = os.Chmod(p, 0o644)
		}
		if err == nil {
			err = os.Rename(p, dst)
		}
		if err != nil {
			c.log.Warn("record: recovering a segment left by a killed recorder failed", "file", p, "err", err)
			continue
		}
		c.log.Info("record: recovered a segment left by a killed recorder", "file", dst, "packets", n)
	}
}
