package sink

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
)

// reorderDepth is how many packets the image sinks hold to put packets
// back in decode order: images arrive in display order, which differs with
// B-frames. 16 covers the deepest H.264/HEVC reorder (max_num_reorder_frames).
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

// imageMuxer feeds images into one MP4Writer in the chosen mode.
type imageMuxer struct {
	camera   string
	w        *MP4Writer
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
	w, err := NewMP4Writer(path, o)
	if err != nil {
		return nil, err
	}
	return &imageMuxer{w: w, want: w.o.Mode, log: w.log}, nil
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
		m.log.Debug("sink: video mode", "file", m.w.path, "mode", m.mode)
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
				"file", m.w.path)
		}
	}
	if !m.out.IsZero() && img.Packet.ID.Compare(m.out) <= 0 {
		m.late++ // arrived after its decode slot (or a duplicate)
		return nil
	}
	heap.Push(&m.q, img.Packet)
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
// change stays queued (see takeQueue).
func (m *imageMuxer) pop() error {
	p := heap.Pop(&m.q).(cache.Packet)
	if err := m.w.WritePacket(p); err != nil {
		if errors.Is(err, ErrCodecChanged) {
			heap.Push(&m.q, p)
		}
		return err
	}
	m.out = p.ID
	return nil
}

// takeQueue removes and returns the queued packets, to continue them in a
// new file after a codec change.
func (m *imageMuxer) takeQueue() []cache.Packet {
	q := m.q
	m.q = nil
	return q
}

// seed queues packets taken from a previous muxer; the mode is Remux.
func (m *imageMuxer) seed(q []cache.Packet) error {
	m.mode = Remux
	for _, p := range q {
		heap.Push(&m.q, p)
	}
	return m.trim()
}

// close drains the reorder queue and finalizes the file.
func (m *imageMuxer) close() error {
	return errors.Join(m.drain(), m.w.Close())
}

// VideoStats are a video sink's counters.
type VideoStats struct {
	MP4Stats
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
// with an error wrapping ErrCodecChanged, after finalizing the file so far
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
		if errors.Is(cerr, ErrNoFrames) {
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
	v.stats.MP4Stats = m.w.Stats()
	v.stats.Modified, v.stats.NoPacket = m.modified, m.noPacket
	if finished && v.stats.Packets > 0 {
		v.stats.Files = 1
	}
}

// ClipOptions configures Clips. The zero value starts a new clip after a
// 1 s gap and names clips "{camera}_{ts}.mp4".
type ClipOptions struct {
	// Video configures each clip's writer.
	Video VideoOptions
	// Gap ends a clip when the next image's timestamp is more than Gap
	// after the previous one's. Default 1 s.
	Gap time.Duration
	// MaxDuration, when set, bounds a clip of continuous images (a scene
	// in constant motion): once a clip spans MaxDuration, the next
	// keyframe image starts a new file, so a clip is at most MaxDuration
	// plus one GOP long. 0 means no bound.
	MaxDuration time.Duration
	// Pattern names each clip from its first image; the placeholders are
	// ImageOptions.Pattern's ({seq} counts clips). Default
	// "{camera}_{ts}.mp4".
	Pattern string
	// OnClip, if set, is called with the path of each finished clip, from
	// the sink's goroutine.
	OnClip func(path string)
}

// ClipWriter is the sink returned by Clips.
type ClipWriter struct {
	dir   string
	o     ClipOptions
	mu    sync.Mutex
	files []string
	n     atomic.Int64
}

var _ flow.Sink = (*ClipWriter)(nil)

// Clips returns a sink for record-on-motion: it writes one MP4 per burst
// of images under dir, starting a new file when the gap between two
// consecutive image timestamps exceeds o.Gap, at the first keyframe past
// o.MaxDuration, and on a codec change. Each
// clip is written like VideoFile (mode chosen from the clip's first image).
// Feed it the frames around an event, e.g. from a replay operator; a burst
// in remux mode starts at its first keyframe.
func Clips(dir string, o ClipOptions) *ClipWriter {
	return &ClipWriter{dir: dir, o: o}
}

// Files returns the paths of the clips finished so far, oldest first.
func (c *ClipWriter) Files() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.files...)
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
	if o.Video, err = o.Video.withDefaults(); err != nil {
		return err
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	var (
		cur   *imageMuxer
		first time.Time // the current clip's first image
		last  time.Time
	)
	start := func(camera string, t time.Time) error {
		name := filepath.Join(c.dir, expandPattern(o.Pattern, camera, t, c.n.Add(1)))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return fmt.Errorf("sink: %w", err)
		}
		m, err := newImageMuxer(name, o.Video)
		if err != nil {
			return err
		}
		m.camera = camera
		cur, first = m, t
		return nil
	}
	// finishOne finalizes the current clip and returns the packets it could
	// not take because of a codec change.
	finishOne := func() ([]cache.Packet, error) {
		m := cur
		cur = nil
		err := m.drain()
		var rest []cache.Packet
		if errors.Is(err, ErrCodecChanged) {
			rest, err = m.takeQueue(), nil
		}
		err = errors.Join(err, m.close())
		switch {
		case errors.Is(err, ErrNoFrames):
			m.log.Debug("sink: clip had no writable frame", "file", m.w.path)
		case err != nil:
			return nil, err
		default:
			c.mu.Lock()
			c.files = append(c.files, m.w.path)
			c.mu.Unlock()
			if o.OnClip != nil {
				o.OnClip(m.w.path)
			}
		}
		return rest, nil
	}
	// cont starts a new clip with the packets a codec change left over.
	cont := func(camera string, rest []cache.Packet) error {
		for {
			if err := start(camera, rest[0].ID.Time()); err != nil {
				return err
			}
			err := cur.seed(rest)
			if !errors.Is(err, ErrCodecChanged) {
				return err
			}
			rest = cur.takeQueue()
			if _, err := finishOne(); err != nil {
				return err
			}
		}
	}
	// finish finalizes the current clip and any continuation of it.
	finish := func() error {
		for cur != nil {
			camera := cur.camera
			rest, err := finishOne()
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				if err := cont(camera, rest); err != nil {
					return err
				}
			}
		}
		return nil
	}
	defer func() {
		ferr := finish()
		if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			err = errors.Join(ferr, err)
		} else if ferr != nil {
			o.Video.Logger.Error("sink: finalizing clip", "err", ferr)
		}
	}()
	return each(ctx, in, func(img flow.Image) error {
		long := o.MaxDuration > 0 && img.Keyframe && img.Time.Sub(first) >= o.MaxDuration
		if cur != nil && (img.Time.Sub(last) > o.Gap || long) {
			if err := finish(); err != nil {
				img.Release()
				return err
			}
		}
		last = img.Time
		camera := img.Camera
		if cur == nil {
			if err := start(camera, img.Time); err != nil {
				img.Release()
				return err
			}
		}
		err := cur.add(img) // releases img
		if errors.Is(err, ErrCodecChanged) {
			// The packets from the changed keyframe on are still queued:
			// continue them in a new clip.
			rest := cur.takeQueue()
			if _, err = finishOne(); err == nil {
				err = cont(camera, rest)
			}
		}
		return err
	})
}
