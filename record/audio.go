package record

import (
	"context"
	"errors"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/mp4"
)

const (
	// audioTail is how far past a batch's last video packet the follower
	// reads audio, so that the audio covering a segment's last frame is at
	// hand when the segment ends.
	audioTail = 100 // ms
	// audioReplay is how much audio before a new segment's first keyframe
	// is given to it again (the previous segment got it too); the writer
	// starts with the frame nearest the keyframe.
	audioReplay = 100 // ms
	// audioFetch bounds one audio read (about 85 s of 48 kHz AAC).
	audioFetch = 4096
)

// camAudio is a camera's audio follower: it reads the cloud layout's audio
// (cache.AudioReader) alongside the video and hands each segment's writer
// the audio that covers its frames. Owned by the follower goroutine.
type camAudio struct {
	ar              cache.AudioReader
	from            cache.ID           // the next audio entry to read
	buf             []cache.AudioFrame // read, not yet given to a segment
	recent          []cache.AudioFrame // given, within audioReplay of the newest video packet
	cfg             mp4.AudioConfig    // of the newest well-formed frame
	haveCfg, warned bool
	checked         bool // the camera's layout was checked
}

// fetch reads the camera's audio up to audioTail past ms (the newest video
// packet read), from no earlier than a second before first (the oldest).
func (c *camRec) fetchAudio(ctx context.Context, first, ms uint64) {
	a := c.audio
	if a == nil {
		return
	}
	if !a.checked {
		// Only the cloud layout has audio: spare an edge camera the
		// audio reads.
		if rc, ok := a.ar.(*rediscache.Cache); ok {
			l, err := rc.Layout(ctx, c.id)
			switch {
			case err == nil && l == rediscache.LayoutEdge:
				c.audio = nil
				return
			case err == nil && l == rediscache.LayoutCloud:
				a.checked = true
			}
		}
	}
	from := a.from
	if lo := (cache.ID{MS: first - min(first, 1000)}); from.Compare(lo) < 0 {
		from = lo
	}
	frames, err := a.ar.AudioRange(ctx, c.id, from, cache.ID{MS: ms + audioTail, Seq: ^uint64(0)}, audioFetch)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("record: reading the audio failed", "err", err)
		}
		return
	}
	if len(frames) > 0 {
		a.from = frames[len(frames)-1].ID.Next()
		// The reply's data is read-only and the writer copies it.
		a.buf = append(a.buf, frames...)
	}
}

// feedAudio gives the open segment the audio read up to ms, and keeps the
// last audioReplay of it for a segment that starts at the next packet.
func (c *camRec) feedAudio(ms uint64) {
	a := c.audio
	if a == nil {
		return
	}
	n := 0
	for ; n < len(a.buf) && a.buf[n].ID.MS <= ms; n++ {
		f := a.buf[n]
		if cfg, _, err := mp4.ParseADTS(f.Data); err == nil {
			a.cfg, a.haveCfg = cfg, true
		}
		c.writeAudio(f)
		a.recent = append(a.recent, f)
	}
	a.buf = append(a.buf[:0], a.buf[n:]...)
	k := 0
	for k < len(a.recent) && a.recent[k].ID.MS+audioReplay < ms {
		k++
	}
	a.recent = append(a.recent[:0], a.recent[k:]...)
}

// writeAudio gives f to the open segment; malformed entries are skipped
// (the writer counts them).
func (c *camRec) writeAudio(f cache.AudioFrame) {
	if c.w == nil || !c.hasAudio {
		return
	}
	err := c.w.WriteAudio(int64(f.ID.MS), f.Data)
	if err != nil && !c.audio.warned {
		c.audio.warned = true
		c.log.Warn("record: skipping an audio entry (further ones are counted)", "at", f.ID, "err", err)
	}
	if err != nil && !errors.Is(err, mp4.ErrBadADTS) {
		c.log.Error("record: writing audio failed", "at", f.ID, "err", err)
	}
}

// openAudio adds the audio track to a new segment starting at keyframe p,
// when the camera's audio is known, and gives it the audio just before p.
func (c *camRec) openAudio(p cache.Packet) {
	a := c.audio
	c.hasAudio = false
	if a == nil {
		return
	}
	for _, f := range a.buf {
		if a.haveCfg {
			break
		}
		if cfg, _, err := mp4.ParseADTS(f.Data); err == nil {
			a.cfg, a.haveCfg = cfg, true
		}
	}
	if !a.haveCfg {
		return
	}
	if err := c.w.AddAudio(a.cfg); err != nil {
		c.log.Warn("record: segment without audio", "err", err)
		return
	}
	c.hasAudio = true
	for _, f := range a.recent {
		if f.ID.MS+audioReplay >= p.ID.MS {
			c.writeAudio(f)
		}
	}
}

// endAudio gives the segment about to close the audio read past its last
// packet (the writer keeps what covers the last frame).
func (c *camRec) endAudio() {
	a := c.audio
	if a == nil || !c.hasAudio || !c.haveLast {
		return
	}
	for _, f := range a.buf {
		if f.ID.MS > c.last.MS+audioTail {
			break
		}
		c.writeAudio(f)
	}
}
