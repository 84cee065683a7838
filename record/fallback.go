package record

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/chryscloud/chrysalis-go/cache"
)

// WithArchive returns c with the recorder's archive in dir (Options.Dir)
// behind it: Range and KeyframeAtOrBefore answer the part of a query that
// is older than the camera's oldest cached packet from the archived
// segments (through their indexes), and the rest from c, so a reader of a
// window the cache has already trimmed, such as mp4.Export, gets the same
// packets (ids, timestamps, data) the cache held. The other methods are
// c's. Closing the result closes c.
func WithArchive(c cache.Cache, dir string) cache.Cache {
	return &archived{Cache: c, dir: dir}
}

type archived struct {
	cache.Cache
	dir string

	mu    sync.Mutex
	infos map[string]SegmentInfo // by path
	path  string                 // the segment last read, kept for the next page
	pkts  []cache.Packet
}

// maxRetries bounds how often Range starts over because the cache trimmed
// past where it was reading.
const maxRetries = 8

// oldest is the camera's oldest cached id, or MaxID when it holds nothing.
func (a *archived) oldest(ctx context.Context, camera string) (cache.ID, error) {
	p, err := a.Cache.Range(ctx, camera, cache.MinID, cache.MaxID, 1)
	switch {
	case errors.Is(err, cache.ErrUnknownCamera) || errors.Is(err, cache.ErrEmpty):
		return cache.MaxID, nil
	case err != nil:
		return cache.ID{}, err
	case len(p) == 0:
		return cache.MaxID, nil
	}
	return p[0].ID, nil
}

func (a *archived) Range(ctx context.Context, camera string, start, end cache.ID, count int64) ([]cache.Packet, error) {
	var out []cache.Packet
	need := func() int64 {
		if count <= 0 {
			return 0
		}
		return count - int64(len(out))
	}
	for try := 0; ; try++ {
		first, err := a.oldest(ctx, camera)
		if err != nil {
			return nil, err
		}
		if start.Compare(first) < 0 {
			hi := end
			if before(first).Compare(hi) < 0 {
				hi = before(first)
			}
			arch, err := a.fromArchive(camera, start, hi, need())
			if err != nil {
				return nil, err
			}
			out = append(out, arch...)
			if count > 0 && int64(len(out)) >= count || end.Compare(first) < 0 {
				return out, nil
			}
			start = first // the archive has nothing more before the cache
		}
		tail, err := a.Cache.Range(ctx, camera, start, end, need())
		if err != nil {
			return nil, err
		}
		// Trimming only moves the oldest id forward: when it is still at
		// or before start, the cache held all of [start, ...] during the
		// read and tail misses nothing.
		now, err := a.oldest(ctx, camera)
		if err != nil {
			return nil, err
		}
		if now.Compare(start) <= 0 || now == cache.MaxID && len(tail) == 0 || try >= maxRetries {
			return append(out, tail...), nil
		}
	}
}

func (a *archived) KeyframeAtOrBefore(ctx context.Context, camera string, at cache.ID) (cache.Packet, error) {
	p, err := a.Cache.KeyframeAtOrBefore(ctx, camera, at)
	if err == nil || !errors.Is(err, cache.ErrNotFound) && !errors.Is(err, cache.ErrUnknownCamera) &&
		!errors.Is(err, cache.ErrEmpty) {
		return p, err
	}
	segs, lerr := a.segments(camera)
	if lerr != nil {
		return cache.Packet{}, lerr
	}
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i].First.Compare(at) > 0 {
			continue
		}
		pkts, rerr := a.read(segs[i])
		if rerr != nil {
			return cache.Packet{}, rerr
		}
		for j := len(pkts) - 1; j >= 0; j-- {
			if pkts[j].Keyframe && pkts[j].ID.Compare(at) <= 0 {
				return pkts[j], nil
			}
		}
	}
	return p, err
}

// segments lists the camera's indexed segments; a camera never archived
// has none. A finished segment never changes, so its index is read once.
func (a *archived) segments(camera string) ([]SegmentInfo, error) {
	segs, err := Segments(filepath.Join(a.dir, camera), camera)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	a.mu.Lock()
	known := a.infos
	a.mu.Unlock()
	out := make([]SegmentInfo, 0, len(segs))
	infos := make(map[string]SegmentInfo, len(segs)) // forgets deleted segments
	for _, s := range segs {
		si, ok := known[s.Path]
		if !ok {
			si, err = info(s)
			if errors.Is(err, ErrNoIndex) {
				continue // not readable from the archive
			}
			if err != nil {
				return nil, err
			}
		}
		infos[s.Path] = si
		out = append(out, si)
	}
	a.mu.Lock()
	a.infos = infos
	a.mu.Unlock()
	return out, nil
}

// fromArchive returns up to count (<= 0: all) archived packets in
// [start, end], oldest first, each id once even where segments overlap (a
// recorder restarted with a pre-roll).
func (a *archived) fromArchive(camera string, start, end cache.ID, count int64) ([]cache.Packet, error) {
	segs, err := a.segments(camera)
	if err != nil {
		return nil, err
	}
	var out []cache.Packet
	last := before(start)
	for _, s := range segs {
		if s.Last.Compare(start) < 0 || s.First.Compare(end) > 0 {
			continue
		}
		pkts, err := a.read(s)
		if err != nil {
			return nil, err
		}
		for _, p := range pkts {
			if p.ID.Compare(last) <= 0 || p.ID.Compare(end) > 0 {
				continue
			}
			out = append(out, p)
			last = p.ID
			if count > 0 && int64(len(out)) == count {
				return out, nil
			}
		}
	}
	return out, nil
}

// read returns a segment's packets as the cache held them, keeping the
// last segment read for the next call (an export reads a segment in pages).
func (a *archived) read(s SegmentInfo) ([]cache.Packet, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.path == s.Path {
		return a.pkts, nil
	}
	pkts, err := ReadSegment(s.Path)
	if err != nil {
		return nil, err
	}
	a.path, a.pkts = s.Path, pkts
	return pkts, nil
}

// ReadSegment reads a finished segment back as the packets the cache held:
// the data from the MP4, the rest (id, timestamps, numbers, codec fields)
// from its index. An indexed packet missing from the file, or not matching
// it, is an error.
func ReadSegment(path string) ([]cache.Packet, error) {
	lines, err := readIndex(indexPath(path))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoIndex, path)
	}
	if err != nil {
		return nil, err
	}
	pkts, err := readSegment(path)
	if err != nil {
		return nil, err
	}
	// Every indexed packet must be in the file; a packet past the index
	// (its line failed to write, and the segment ended there) is left out.
	n := match(pkts, lines)
	if n != len(lines) {
		return nil, fmt.Errorf("record: %s: %d packets, %d index lines, %d agree", path, len(pkts), len(lines), n)
	}
	out := make([]cache.Packet, n)
	for i := range out {
		out[i] = lines[i].packet(pkts[i].data)
	}
	return out, nil
}
