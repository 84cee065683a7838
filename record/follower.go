package record

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/media"
	"github.com/chryscloud/chrysalis-go/mp4"
)

const (
	// readPage is how many packets one blocking read returns at most.
	readPage = 256
	// readBlock bounds one blocking read, so a pending switch-off is
	// noticed when the camera sends nothing.
	readBlock = 500 * time.Millisecond
	// retryPause is the pause after a failed cache read.
	retryPause = time.Second
)

// camRec is one camera's recording state. The switch state (on, onAt,
// offAt) is guarded by mu; the open segment and the cursor belong to the
// follower goroutine (run).
type camRec struct {
	o     *Options
	cache cache.Cache
	id    string
	dir   string
	log   *slog.Logger

	// swMu orders the Switch's reads and writes with the API's.
	swMu   sync.Mutex
	seen   bool // the last switch value seen or written
	seenOK bool

	mu    sync.Mutex
	on    bool
	gen   uint64    // counts switch-ons
	onAt  time.Time // the last switch-on
	offAt time.Time // a pending switch-off's end (t + PostRoll); zero: none
	wake  chan struct{}

	// Owned by the follower.
	w        *mp4.Writer
	idx      *indexWriter
	segMS    uint64 // the open segment's first packet's ms
	last     cache.ID
	lastNum  int64
	haveLast bool
	closeErr error
	audio    *camAudio // nil: the cache keeps no audio
	hasAudio bool      // the open segment has an audio track

	recording                           atomic.Bool
	segments, deleted, packets, skipped atomic.Int64
}

func (c *camRec) stats() Stats {
	return Stats{Recording: c.recording.Load(), Segments: c.segments.Load(), Deleted: c.deleted.Load(),
		Packets: c.packets.Load(), Skipped: c.skipped.Load()}
}

func (c *camRec) apply(on bool, t time.Time) {
	if on {
		c.switchOn(t)
	} else {
		c.switchOff(t)
	}
}

func (c *camRec) switchOn(t time.Time) {
	c.mu.Lock()
	if !c.on {
		c.on, c.onAt = true, t
		c.gen++
	}
	c.offAt = time.Time{}
	c.recording.Store(true)
	c.mu.Unlock()
	c.poke()
}

func (c *camRec) switchOff(t time.Time) {
	c.mu.Lock()
	if c.on && c.offAt.IsZero() {
		c.offAt = t.Add(c.o.PostRoll)
	}
	c.mu.Unlock()
	c.poke()
}

func (c *camRec) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// state returns the switch state.
func (c *camRec) state() (on bool, gen uint64, onAt, offAt time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.on, c.gen, c.onAt, c.offAt
}

// offIfDue switches the camera off when its switch-off is due at time ms
// (a packet's, or the wall clock's), unless it was switched on since.
func (c *camRec) offIfDue(gen uint64, ms uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Signed: a switch-off time before 1970 is due at once (as uint64 it
	// was never due).
	if c.gen != gen || !c.on || c.offAt.IsZero() || int64(ms) <= c.offAt.UnixMilli() {
		return false
	}
	c.on, c.offAt = false, time.Time{}
	c.recording.Store(false)
	return true
}

// run is the follower: idle while off, recording while on, until ctx ends;
// then it finalises the open segment.
func (c *camRec) run(ctx context.Context, cam *chrysalis.Camera) {
	defer func() { c.closeErr = c.endSegment() }()
	for {
		on, gen, onAt, _ := c.state()
		if !on {
			select {
			case <-ctx.Done():
				return
			case <-c.wake:
				continue
			}
		}
		after, err := c.startAfter(ctx, cam, onAt)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if c.offIfDue(gen, uint64(time.Now().UnixMilli())) {
				continue // switched off meanwhile: nothing to record
			}
			c.log.Warn("record: finding the pre-roll start failed", "err", err)
			if !sleep(ctx, retryPause) {
				return
			}
			continue
		}
		if !c.record(ctx, cam, gen, after) {
			return
		}
		if err := c.endSegment(); err != nil {
			c.log.Error("record: finishing the segment failed", "err", err)
		}
	}
}

// startAfter returns the id recording reads after: just before the
// keyframe at or before onAt - PreRoll (or before the first packet from
// then on when the cache has no keyframe before it, or before that time when
// it is still to come).
//
// When that reaches into what an earlier switch-on recorded (switched off
// and on again within the pre-roll), recording resumes at the first packet
// not recorded, and since a segment must start at a keyframe, from the
// keyframe at or before it: the new segment repeats up to one GOP of the
// previous one's tail rather than losing the packets up to the next
// keyframe. (When no packet has come since, it reads from the keyframe at
// or before the last one recorded, for the same reason.)
func (c *camRec) startAfter(ctx context.Context, cam *chrysalis.Camera, onAt time.Time) (cache.ID, error) {
	start := onAt.Add(-c.o.PreRoll)
	ws, ok, err := cam.WindowStart(ctx, start, start.Add(24*time.Hour))
	if err != nil {
		return cache.ID{}, err
	}
	from := cache.IDAt(start)
	switch {
	case ok:
		from = ws.First.ID
		if ws.HasKeyframe {
			from = ws.Keyframe.ID
		}
	case !start.After(time.Now()):
		// No packet from start on yet (a pre-roll shorter than the
		// ingest's latency): the keyframe at or before start is cached
		// already; reading after start would skip to the next keyframe
		// and lose up to a GOP.
		at := from
		at.Seq = ^uint64(0)
		if kf, err := c.cache.KeyframeAtOrBefore(ctx, c.id, at); err == nil {
			from = kf.ID
		}
	}
	if !c.haveLast || from.Compare(c.last) > 0 {
		return before(from), nil
	}
	ws, ok, err = cam.WindowStartIDs(ctx, c.last.Next(), cache.MaxID)
	switch {
	case err != nil:
		return cache.ID{}, err
	case !ok:
		// Nothing new yet: the next packets continue the last one's GOP,
		// and a segment opens only at a keyframe, so read from the
		// keyframe the last recorded packet depends on (reading after the
		// last packet would drop the rest of its GOP).
		kf, err := c.cache.KeyframeAtOrBefore(ctx, c.id, c.last)
		if err != nil {
			return c.last, nil
		}
		return before(kf.ID), nil
	case ws.HasKeyframe && ws.Keyframe.ID.Compare(from) > 0:
		return before(ws.Keyframe.ID), nil
	case ws.HasKeyframe:
		return before(from), nil
	}
	return before(ws.First.ID), nil
}

// before is the greatest id below id.
func before(id cache.ID) cache.ID {
	switch {
	case id.Seq > 0:
		return cache.ID{MS: id.MS, Seq: id.Seq - 1}
	case id.MS > 0:
		return cache.ID{MS: id.MS - 1, Seq: ^uint64(0)}
	}
	return cache.MinID
}

// record writes the packets after after until the switch-off of switch-on
// gen is due (true) or ctx ends (false).
func (c *camRec) record(ctx context.Context, cam *chrysalis.Camera, gen uint64, after cache.ID) bool {
	for {
		pkts, err := cam.PacketsAfter(ctx, after, readPage, readBlock)
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			c.log.Warn("record: reading the cache failed", "err", err)
			if !sleep(ctx, retryPause) {
				return false
			}
			continue
		}
		if len(pkts) == 0 && c.offIfDue(gen, uint64(time.Now().UnixMilli())) {
			return true
		}
		if len(pkts) > 0 {
			c.fetchAudio(ctx, pkts[0].ID.MS, pkts[len(pkts)-1].ID.MS)
		}
		for _, p := range pkts {
			if c.offIfDue(gen, p.ID.MS) {
				return true
			}
			c.write(ctx, p)
			after = p.ID
		}
		if ctx.Err() != nil {
			return false
		}
	}
}

// write adds p to the open segment, cutting segments at a keyframe past
// Segment, at a gap in packet numbers and at a codec change.
func (c *camRec) write(ctx context.Context, p cache.Packet) {
	c.feedAudio(p.ID.MS) // the audio up to p, to the segment p may end
	gap := c.haveLast && media.NumberGap(c.lastNum, p.Number)
	c.last, c.lastNum, c.haveLast = p.ID, p.Number, true
	if gap && c.w != nil {
		c.log.Warn("record: gap in packet numbers; the segment ends, the next starts at a keyframe", "at", p.ID)
		c.finish()
	}
	if c.w != nil && p.Keyframe && p.ID.MS >= c.segMS+uint64(c.o.Segment.Milliseconds()) {
		c.finish()
	}
	if c.w == nil {
		if !p.Keyframe {
			c.skipped.Add(1)
			return
		}
		if !c.open(ctx, p) {
			c.skipped.Add(1)
			return
		}
	}
	skipped := c.w.Stats().Skipped
	err := c.w.WritePacket(p)
	if errors.Is(err, mp4.ErrCodecChanged) {
		c.log.Info("record: codec changed; new segment", "at", p.ID)
		c.finish()
		if !c.open(ctx, p) {
			c.skipped.Add(1)
			return
		}
		skipped = c.w.Stats().Skipped
		err = c.w.WritePacket(p)
	}
	if err == nil && c.w.Stats().Skipped != skipped {
		// The writer left p out (a gap in the numbering it saw, which it
		// logged): not archived.
		c.skipped.Add(1)
		return
	}
	if err == nil && len(p.Data) > 0 {
		// Before p can reach the file: the writer holds it until the next
		// packet, and cuts its fragment at the next keyframe.
		if err = c.idx.add(p); err != nil {
			err = fmt.Errorf("writing the index: %w", err)
		}
	}
	if err != nil {
		c.log.Error("record: writing failed; the segment ends", "at", p.ID, "err", err)
		c.finish()
		c.skipped.Add(1)
		return
	}
	c.packets.Add(1)
}

// open starts a segment at keyframe p. The camera's codec parameters fill
// in what p lacks (a writer that puts them in the codec key only).
func (c *camRec) open(ctx context.Context, p cache.Packet) bool {
	path := c.freeSegmentPath(p.ID.MS)
	if path == "" {
		c.log.Error("record: no free segment name: 1000 segments start within a millisecond of this one", "at", p.ID)
		return false
	}
	codec, err := c.cache.Codec(ctx, c.id)
	if ctx.Err() != nil {
		return false // closing: no new segment
	}
	if err != nil && !errors.Is(err, cache.ErrNotFound) && !errors.Is(err, cache.ErrUnknownCamera) {
		c.log.Error("record: reading the codec failed", "err", err)
		return false
	}
	w, err := mp4.Create(path, codec, mp4.Options{Mode: mp4.Remux, FragmentedMP4: true, Logger: c.log})
	if err != nil {
		c.log.Error("record: creating the segment failed", "file", path, "err", err)
		return false
	}
	idx, err := createIndex(indexPath(path))
	if err != nil {
		w.Close()
		c.log.Error("record: creating the segment index failed", "file", path, "err", err)
		return false
	}
	c.w, c.idx, c.segMS = w, idx, p.ID.MS
	c.openAudio(p)
	return true
}

// freeSegmentPath names a segment starting at ms. Switched off and on
// within a GOP, the recorder resumes at the keyframe a finished segment
// already starts at: the new segment's name then takes the next free
// millisecond, so it never replaces that segment (the packets both hold
// are the repeat of under one GOP documented on StartCamera).
// It returns "" when the next 1000 names are all taken (no segment then:
// never replace one).
func (c *camRec) freeSegmentPath(ms uint64) string {
	for i := range uint64(1000) {
		path := filepath.Join(c.dir, segmentName(c.id, ms+i))
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			return path
		}
	}
	return ""
}

// finish finalises the open segment, logging a failure.
func (c *camRec) finish() {
	if err := c.endSegment(); err != nil {
		c.log.Error("record: finishing the segment failed", "err", err)
	}
}

// endSegment finalises the open segment, if any, and applies retention.
func (c *camRec) endSegment() error {
	if c.w == nil {
		return nil
	}
	c.endAudio()
	w, idx := c.w, c.idx
	c.w, c.idx = nil, nil
	err := errors.Join(w.Close(), idx.close())
	switch {
	case errors.Is(err, mp4.ErrNoFrames):
		err = removeIfExists(indexPath(w.Path()))
	case err == nil:
		c.segments.Add(1)
		st := w.Stats()
		c.log.Debug("record: segment finished", "file", w.Path(), "packets", st.Packets, "audio", st.AudioPackets)
		if st.AudioBad > 0 {
			// The count writeAudio's first warning promises.
			c.log.Warn("record: the segment's audio lacks malformed entries", "file", w.Path(), "audio_bad", st.AudioBad)
		}
	}
	c.retain(time.Now())
	return err
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
