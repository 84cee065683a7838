package sink

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"github.com/chryscloud/chrysalis-go/media"
	"github.com/chryscloud/chrysalis-go/mp4"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
)

// reorderDepth is how many packets the video sinks hold to put the
// packets of decoded images back in decode order: decoded images arrive in
// display order, which differs with B-frames. 16 covers the deepest
// H.264/HEVC reorder (max_num_reorder_frames). Packet-only images
// (replay.Window's packet mode) come in decode order and skip it.
const reorderDepth = 16

// pktHeap orders packets by cache id (decode order).
type pktHeap []cache.Packet

func (h pktHeap) Len() int           { return len(h) }
func (h pktHeap) Less(i, j int) bool { return h[i].ID.Compare(h[j].ID) < 0 }
func (h pktHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pktHeap) Push(x any)        { *h = append(*h, x.(cache.Packet)) }
func (h *pktHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = cache.Packet{}
	*h = old[:len(old)-1]
	return p
}

// imageMuxer feeds images into one mp4.Writer in the chosen mode.
type imageMuxer struct {
	w        *mp4.Writer
	mode     VideoMode // Auto until the first image
	want     VideoMode
	log      *slog.Logger
	q        pktHeap
	out      cache.ID // newest packet id handed to the writer
	warned   bool
	modified int64
	late     int64
	noPacket int64
}

func newImageMuxer(path string, o VideoOptions) (*imageMuxer, error) {
	o, err := o.WithDefaults()
	if err != nil {
		return nil, err
	}
	w, err := mp4.NewWriter(path, o)
	if err != nil {
		return nil, err
	}
	return &imageMuxer{w: w, want: o.Mode, log: o.Logger}, nil
}

// add writes img and releases it.
func (m *imageMuxer) add(img flow.Image) error {
	defer img.Release()
	if m.mode == Auto {
		m.mode = m.want
		if m.mode == Auto {
			m.mode = Remux
			if img.Modified || len(img.Packet.Data) == 0 {
				m.mode = Encode
			}
		}
		m.log.Debug("sink: video mode", "file", m.w.Path(), "mode", m.mode)
	}
	if m.mode == Encode {
		return m.w.WriteImage(img)
	}
	if len(img.Packet.Data) == 0 {
		m.noPacket++
		return nil
	}
	if img.Modified {
		m.modified++
		if !m.warned {
			m.warned = true
			m.log.Warn("sink: remuxing modified images from their original packets; their pixels are not recorded (use Mode: Encode)",
				"file", m.w.Path())
		}
	}
	if !m.out.IsZero() && img.Packet.ID.Compare(m.out) <= 0 {
		m.late++ // arrived after its decode slot (or a duplicate)
		return nil
	}
	heap.Push(&m.q, img.Packet)
	if img.Data == nil {
		// A packet-only image (replay.Window's packet mode) comes
		// in decode order: nothing to wait for.
		return m.drain()
	}
	return m.trim()
}

// trim writes the oldest queued packets until reorderDepth are left.
func (m *imageMuxer) trim() error {
	for m.q.Len() > reorderDepth {
		if err := m.pop(); err != nil {
			return err
		}
	}
	return nil
}

// drain writes every queued packet. A packet refused for a codec change
// stays queued.
func (m *imageMuxer) drain() error {
	for m.q.Len() > 0 {
		if err := m.pop(); err != nil {
			return err
		}
	}
	return nil
}

// pop writes the oldest queued packet. A packet refused for a codec
// change stays queued.
func (m *imageMuxer) pop() error {
	p := heap.Pop(&m.q).(cache.Packet)
	if err := m.w.WritePacket(p); err != nil {
		if errors.Is(err, mp4.ErrCodecChanged) {
			heap.Push(&m.q, p)
		}
		return err
	}
	m.out = p.ID
	return nil
}

// close drains the reorder queue and finalizes the file.
func (m *imageMuxer) close() error {
	return errors.Join(m.drain(), m.w.Close())
}

// VideoStats are a video sink's counters.
type VideoStats struct {
	mp4.Stats
	// Files is the number of files finished.
	Files int64
	// Modified counts modified images remuxed from their original packet;
	// NoPacket counts images skipped in remux mode for lack of a packet.
	Modified, NoPacket int64
}

// VideoWriter is the sink returned by VideoFile.
type VideoWriter struct {
	path  string
	o     VideoOptions
	mu    sync.Mutex
	stats VideoStats
}

var _ flow.Sink = (*VideoWriter)(nil)

// VideoFile returns a sink that writes the images to one MP4 file at path.
// The mode is decided from the first image (see Auto): untouched images
// that carry their encoded packet are remuxed bit-exact, starting at the
// first keyframe; otherwise the pixels are encoded with libx264. Remuxing
// needs every packet of the stream from that keyframe on (a Past replay, or
// a Block edge): packets lost upstream are detected through their ingest
// numbering and skipped to the next keyframe.
//
// The file is finalized (trailer written, renamed into place) when in
// closes or ctx ends, so it is valid after Ctrl-C. A stream with no
// writable frame creates no file. A codec change in remux mode ends Run
// with an error wrapping mp4.ErrCodecChanged, after finalizing the file so far
// (use Clips to start a new file instead).
func VideoFile(path string, o VideoOptions) *VideoWriter {
	return &VideoWriter{path: path, o: o}
}

// Stats returns the sink's counters; safe from any goroutine.
func (v *VideoWriter) Stats() VideoStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.stats
}

// Run implements flow.Sink.
func (v *VideoWriter) Run(ctx context.Context, in <-chan flow.Image) (err error) {
	m, err := newImageMuxer(v.path, v.o)
	if err != nil {
		return err
	}
	defer func() {
		cerr := m.close()
		if errors.Is(cerr, mp4.ErrNoFrames) {
			m.log.Info("sink: no video written", "file", v.path)
			cerr = nil
		}
		v.update(m, cerr == nil)
		if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			err = errors.Join(cerr, err)
		} else if cerr != nil {
			m.log.Error("sink: finalizing video", "file", v.path, "err", cerr)
		}
	}()
	return each(ctx, in, func(img flow.Image) error {
		if err := m.add(img); err != nil {
			return err
		}
		v.update(m, false)
		return nil
	})
}

func (v *VideoWriter) update(m *imageMuxer, finished bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stats.Stats = m.w.Stats()
	v.stats.Modified, v.stats.NoPacket = m.modified, m.noPacket
	if finished && v.stats.Packets > 0 {
		v.stats.Files = 1
	}
}

// ClipOptions configures Clips. The zero value starts a new clip at every
// break in the packets (see Clips) and names clips "{camera}_{ts}.mp4".
type ClipOptions struct {
	// Video configures each clip's writer.
	Video VideoOptions
	// Gap ends a clip when the next frame is more than Gap after the
	// previous one: by cache time between consecutive packets that the
	// ingest did not number, and between images when encoding. Numbered
	// packets end a clip at any break in their numbering instead,
	// whatever the time. Default 1 s (arrival bursts on unnumbered caches
	// can leave several frame intervals between contiguous packets).
	Gap time.Duration
	// MaxDuration, when set, bounds a clip of continuous images (a scene
	// in constant motion): once a clip spans MaxDuration, the next
	// keyframe starts a new file, so a clip is at most MaxDuration
	// plus one GOP long. 0 means no bound.
	MaxDuration time.Duration
	// Pattern names each clip from its first frame; the placeholders are
	// ImageOptions.Pattern's ({seq} counts clips). Default
	// "{camera}_{ts}.mp4".
	Pattern string
	// OnClip, if set, is called with the path of each finished clip, from
	// the sink's goroutine (Clips has the details).
	OnClip func(path string)
}

// ClipInfo describes a finished clip.
type ClipInfo struct {
	// Path is the clip's file.
	Path string
	// Frames is the number of frames (packets) in the file.
	Frames int64
	// First and Last are the cache ids of the first and last packets
	// written; zero when encoding.
	First, Last cache.ID
	// FirstNumber and LastNumber are their ingest numbers (0 when the
	// packets are not numbered).
	FirstNumber, LastNumber int64
}

// ClipWriter is the sink returned by Clips.
type ClipWriter struct {
	dir   string
	o     ClipOptions
	mu    sync.Mutex
	clips []ClipInfo
	n     atomic.Int64
}

var _ flow.Sink = (*ClipWriter)(nil)

// Clips returns a sink for record-on-motion: it writes one MP4 per event
// under dir. Feed it the frames around events, best from
// replay.Window in packet mode (no decoding; see its Into, which
// also keeps the last window on shutdown).
//
// The mode (see VideoMode) is chosen from the first image and holds for
// the run. When remuxing, the packets are taken in decode order (packet-only
// images as they come, decoded images re-sorted) and a clip ends, so that
// no file has a jump inside it, when the next packet does not continue it:
// a break in the ingest's packet numbering, or for unnumbered packets a
// cache-time step over o.Gap. A clip starts at a keyframe (packets before
// one are skipped): fed by a window replay starting at the keyframe at or
// before the window, a clip's first frame is that keyframe. A clip also
// ends at the first keyframe past o.MaxDuration, and at a codec change
// (the new file starts at the changed keyframe). When encoding, a clip
// ends when the gap between two image timestamps exceeds o.Gap, or at the
// first keyframe image past o.MaxDuration.
//
// Each clip is finalised when the next one starts, and when in closes or
// ctx ends, so it is valid after Ctrl-C.
func Clips(dir string, o ClipOptions) *ClipWriter {
	return &ClipWriter{dir: dir, o: o}
}

// Files returns the paths of the clips finished so far, oldest first.
func (c *ClipWriter) Files() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	files := make([]string, len(c.clips))
	for i, ci := range c.clips {
		files[i] = ci.Path
	}
	return files
}

// Clips describes the clips finished so far, oldest first.
func (c *ClipWriter) Clips() []ClipInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ClipInfo(nil), c.clips...)
}

// Run implements flow.Sink.
func (c *ClipWriter) Run(ctx context.Context, in <-chan flow.Image) (err error) {
	o := c.o
	if o.Gap == 0 {
		o.Gap = time.Second
	}
	if o.Pattern == "" {
		o.Pattern = "{camera}_{ts}.mp4"
	}
	if err := checkPattern(o.Pattern); err != nil {
		return err
	}
	if o.Video, err = o.Video.WithDefaults(); err != nil {
		return err
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	s := &clipState{c: c, o: o, log: o.Video.Logger, mode: o.Video.Mode}
	defer func() {
		ferr := s.close()
		if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			err = errors.Join(ferr, err)
		} else if ferr != nil {
			s.log.Error("sink: finalizing clip", "err", ferr)
		}
	}()
	return each(ctx, in, s.image)
}

// clipState is ClipWriter.Run's state: the clip being written and the
// steps that feed, cut, start and finish clips.
type clipState struct {
	c    *ClipWriter
	o    ClipOptions
	log  *slog.Logger
	mode VideoMode // Auto until the first image

	// Remux: decoded images' packets re-sorted into decode order.
	q   pktHeap
	out cache.ID // the newest packet taken from q

	w      *mp4.Writer // the current clip; nil between clips
	info   ClipInfo    // the current clip's
	camera string
	start  time.Time    // the current clip's first frame
	prev   cache.Packet // remux: the previous packet seen
	prevT  time.Time    // encode: the previous image's time

	warned bool
}

// image takes one image (and releases it): the flow.Sink step.
func (s *clipState) image(img flow.Image) error {
	defer img.Release()
	if s.mode == Auto {
		s.mode = Remux
		if img.Modified || len(img.Packet.Data) == 0 {
			s.mode = Encode
		}
		s.log.Debug("sink: clip mode", "dir", s.c.dir, "mode", s.mode)
	}
	if s.mode == Encode {
		return s.encode(img)
	}
	if len(img.Packet.Data) == 0 {
		return nil // nothing to remux
	}
	if img.Modified && !s.warned {
		s.warned = true
		s.log.Warn("sink: remuxing modified images from their original packets; their pixels are not recorded (use Mode: Encode)",
			"dir", s.c.dir)
	}
	if img.Data == nil && s.q.Len() == 0 {
		// A packet-only image comes in decode order.
		return s.packet(img.Camera, img.Packet)
	}
	if !s.out.IsZero() && img.Packet.ID.Compare(s.out) <= 0 {
		return nil // arrived after its decode slot (or a duplicate)
	}
	heap.Push(&s.q, img.Packet)
	for s.q.Len() > reorderDepth || (img.Data == nil && s.q.Len() > 0) {
		if err := s.packet(img.Camera, s.pop()); err != nil {
			return err
		}
	}
	return nil
}

func (s *clipState) pop() cache.Packet {
	p := heap.Pop(&s.q).(cache.Packet)
	s.out = p.ID
	return p
}

// packet writes one packet, in decode order, to the clip it belongs to.
func (s *clipState) packet(camera string, p cache.Packet) error {
	if s.w != nil && s.breaks(p) {
		if err := s.finish(); err != nil {
			return err
		}
	}
	s.prev = p
	if s.w == nil {
		if !p.Keyframe {
			return nil // a clip starts at a keyframe
		}
		if err := s.open(camera, p.ID.Time()); err != nil {
			return err
		}
	}
	err := s.w.WritePacket(p)
	if errors.Is(err, mp4.ErrCodecChanged) {
		s.log.Info("sink: codec change; starting a new clip", "at", p.ID.String())
		if err := s.finish(); err != nil {
			return err
		}
		if err := s.open(camera, p.ID.Time()); err != nil {
			return err
		}
		err = s.w.WritePacket(p)
	}
	if err != nil {
		return err
	}
	if s.info.First.IsZero() {
		s.info.First, s.info.FirstNumber = p.ID, p.Number
	}
	s.info.Last, s.info.LastNumber = p.ID, p.Number
	return nil
}

// breaks reports whether p does not continue the current clip.
func (s *clipState) breaks(p cache.Packet) bool {
	if p.Number > 0 && s.prev.Number > 0 {
		if media.NumberGap(s.prev.Number, p.Number) {
			return true
		}
	} else if p.ID.Time().Sub(s.prev.ID.Time()) > s.o.Gap {
		return true
	}
	return p.Keyframe && s.o.MaxDuration > 0 && p.ID.Time().Sub(s.start) >= s.o.MaxDuration
}

// encode writes one image with the encoder, starting a new clip after a
// gap or past MaxDuration.
func (s *clipState) encode(img flow.Image) error {
	long := s.o.MaxDuration > 0 && img.Keyframe && img.Time.Sub(s.start) >= s.o.MaxDuration
	if s.w != nil && (img.Time.Sub(s.prevT) > s.o.Gap || long) {
		if err := s.finish(); err != nil {
			return err
		}
	}
	s.prevT = img.Time
	if s.w == nil {
		if err := s.open(img.Camera, img.Time); err != nil {
			return err
		}
	}
	return s.w.WriteImage(img)
}

// open starts a clip whose first frame is at t.
func (s *clipState) open(camera string, t time.Time) error {
	name := filepath.Join(s.c.dir, expandPattern(s.o.Pattern, camera, t, s.c.n.Add(1)))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	w, err := mp4.NewWriter(name, s.o.Video)
	if err != nil {
		return err
	}
	s.w, s.camera, s.start, s.info = w, camera, t, ClipInfo{Path: name}
	return nil
}

// finish finalises the current clip and records it.
func (s *clipState) finish() error {
	w := s.w
	s.w = nil
	err := w.Close()
	switch {
	case errors.Is(err, mp4.ErrNoFrames):
		s.log.Debug("sink: clip had no writable frame", "file", w.Path())
		return nil
	case err != nil:
		return err
	}
	s.info.Frames = w.Stats().Packets
	s.c.mu.Lock()
	s.c.clips = append(s.c.clips, s.info)
	s.c.mu.Unlock()
	if s.o.OnClip != nil {
		s.o.OnClip(w.Path())
	}
	return nil
}

// close writes what the reorder queue holds and finalises the last clip.
func (s *clipState) close() error {
	var err error
	for s.q.Len() > 0 && err == nil {
		err = s.packet(s.camera, s.pop())
	}
	if s.w != nil {
		err = errors.Join(err, s.finish())
	}
	return err
}
