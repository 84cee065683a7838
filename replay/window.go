// Package replay turns triggers into clips: Window replays a camera's
// cached frames (decoded) or packets (for remuxing, no decoding) over
// [t-Pre, t+Post] for each trigger image at t, merging overlapping
// windows. It reads the cache only through chrysalis.Camera (Span,
// WaitUntil, WindowStart, Past, Packets), so it works on every cache and
// layout the client reads. It is kept apart from package operator so that
// the pure-Go operators build without cgo.
package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/media"
)

// DefaultMaxWait is added to Post to bound how long Window
// waits for the cache to reach the end of a window.
const DefaultMaxWait = 10 * time.Second

// DefaultStopGrace bounds how long a sink made by Window.Into may take
// to replay the last window and finalise after its context ends.
const DefaultStopGrace = 10 * time.Second

// Window turns triggers into clips: for each image from in (a
// trigger at t = img.Time, e.g. from Motion) it replays the camera's
// frames over [t-Pre, t+Post] from the cache into out, then releases the
// trigger image.
//
// It waits until the cache holds t+Post (its newest entry is at or after
// it; a blocking cache read, no polling) before replaying the window's
// rest, and replays what the cache has once MaxWait has passed without
// getting there (a camera that stopped). The window start is clamped to
// the cache's oldest frame, so a long Pre on a short cache yields what is
// left instead of chrysalis.ErrTrimmed.
//
// Frames are emitted once, in time order: a trigger whose window overlaps
// (or touches) a pending or playing window extends and merges with it
// instead of replaying its frames again, and frames at or before the last
// one emitted are never emitted again (a late trigger for an already
// replayed span only adds what comes after it). Triggers keep being read
// while a window plays, so triggers never back up. When in is closed, the
// pending windows are finished, then Run returns nil. When ctx ends, Run
// returns at once and the pending window is lost; Into keeps it.
//
// A window [start, end] holds every packet whose cache id's millisecond is
// in it (many packets can share a millisecond). With B-frames, a frame
// displayed at t+Post may be stored in a later packet; the cache is
// considered to hold t+Post once its newest packet is at t+Post.
//
// # Packet mode
//
// With Packets set, the replay does not decode: for consumers that only
// remux (sink.Clips, sink.VideoFile) it emits one image per cached packet,
// in decode (cache) order, each carrying only its encoded packet:
//
//   - Packet is the cached packet (Data shared, read-only), ID its cache id,
//     Time the id's millisecond, Keyframe and PTS the packet's;
//   - Data is nil, Stride 0 and Format meaningless: there are no pixels.
//     Width and Height are the packet's coded size when the cache records
//     it, else 0. PictType is "I" for a keyframe, "?" otherwise;
//   - Release is a no-op for the (absent) buffer, as for any poolless image.
//
// Do not connect a consumer that reads pixels (ChImage.Check reports
// ErrBadImage for these images). Each window starts at the keyframe at or
// before its first packet, so a remuxed clip keeps its whole pre-roll
// (FromKeyframe is implied); a window that starts inside the GOP where the
// previous one ended continues it instead, replaying the packets in between,
// so the two make one continuous clip. After a gap in the ingest's packet
// numbering (lost packets, an outage, a trim) the replay skips to the next
// keyframe and counts what it skipped (Skipped); it never emits a packet
// that cannot be decoded from the keyframe before it. Options is not used.
type Window struct {
	// Client reads the frame cache. Required.
	Client *chrysalis.Client
	// Camera is the camera replayed (not necessarily the triggers' camera).
	// Required.
	Camera string
	// Pre and Post extend the window before and after each trigger. Default
	// 0 (a single frame).
	Pre, Post time.Duration
	// Options chooses format and size of the replayed images (decoding
	// mode only).
	Options chrysalis.CameraOptions
	// MaxWait bounds the wait for the cache to reach a window's end. 0
	// means Post + DefaultMaxWait.
	MaxWait time.Duration
	// FromKeyframe starts each window's replay at the keyframe at or before
	// its first frame instead of at t-Pre itself, so a clip remuxed from
	// the frames (which can only begin on a keyframe) keeps its whole
	// pre-roll. Default false: exactly the frames of [t-Pre, t+Post].
	// Packet mode always starts at the keyframe.
	FromKeyframe bool
	// Packets selects packet mode (see the type's documentation): emit the
	// encoded packets without decoding, for consumers that remux.
	Packets bool
	// StopGrace bounds, for a sink made by Into, how long the last window
	// and the sink may take after ctx ends. 0 means DefaultStopGrace.
	StopGrace time.Duration
	// Logger defaults to Options.Logger, then slog.Default().
	Logger *slog.Logger

	triggers, windows, frames, skipped atomic.Int64
}

var _ flow.Operator = (*Window)(nil)

// Triggers counts the triggers received.
func (w *Window) Triggers() int64 { return w.triggers.Load() }

// Windows counts the distinct windows (merged triggers count once).
func (w *Window) Windows() int64 { return w.windows.Load() }

// Frames counts the frames (packet mode: packets) sent.
func (w *Window) Frames() int64 { return w.frames.Load() }

// Skipped counts, in packet mode, the packets not sent because they
// followed a gap in the packet numbering (up to the next keyframe), or
// because a window's keyframe had been trimmed.
func (w *Window) Skipped() int64 { return w.skipped.Load() }

func (w *Window) logger() *slog.Logger {
	switch {
	case w.Logger != nil:
		return w.Logger
	case w.Options.Logger != nil:
		return w.Options.Logger
	}
	return slog.Default()
}

// span is a window [start, end], ms precision.
type span struct{ start, end time.Time }

// spanQueue holds the pending windows, sorted and disjoint; the head is
// the one playing. The trigger reader adds, the replayer consumes.
type spanQueue struct {
	mu     sync.Mutex
	spans  []span
	closed bool
	wake   chan struct{} // capacity 1: "something changed"
}

// add merges s into the queue and reports whether it made a new window.
func (q *spanQueue) add(s span) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.notify()
	var out []span
	merged := false
	for _, o := range q.spans {
		if !s.start.After(o.end.Add(time.Millisecond)) && !o.start.After(s.end.Add(time.Millisecond)) {
			if o.start.Before(s.start) {
				s.start = o.start
			}
			if o.end.After(s.end) {
				s.end = o.end
			}
			merged = true
			continue
		}
		out = append(out, o)
	}
	i := 0
	for i < len(out) && out[i].start.Before(s.start) {
		i++
	}
	out = append(out[:i], append([]span{s}, out[i:]...)...)
	q.spans = out
	return !merged
}

func (q *spanQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.notify()
}

func (q *spanQueue) notify() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// head returns the playing window; ok is false when there is none, done
// when none will come.
func (q *spanQueue) head() (s span, ok, done bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.spans) == 0 {
		return span{}, false, q.closed
	}
	return q.spans[0], true, false
}

// played records that everything up to upto was replayed: the head is
// removed when it ends there, else it now starts after it.
func (q *spanQueue) played(upto time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.spans) > 0 && !q.spans[0].end.After(upto) {
		q.spans = q.spans[1:]
	}
	if len(q.spans) > 0 && !q.spans[0].start.After(upto) {
		q.spans[0].start = upto.Add(time.Millisecond)
	}
}

// Run implements flow.Operator.
func (w *Window) Run(ctx context.Context, in <-chan flow.Image, out chan<- flow.Image) error {
	return w.run(ctx, ctx, in, out, false)
}

// Into returns a sink that runs w and s as one node, w's output feeding s
// directly, so that stopping keeps the last window: when ctx ends, the
// trigger input is no longer read, a pending window is cut at the newest
// frame the cache holds then (no wait for t+Post), replayed into s, and s
// finishes with its input closed (a clip writer finalises its file). The
// replay and s get StopGrace (DefaultStopGrace) for that; after it their
// context ends too. The sink returns ctx.Err() when ctx ended, else the
// first error of w or s.
//
//	replay := &replay.Window{Client: cl, Camera: "cam", Pre: 2 * time.Second, Post: 2 * time.Second, Packets: true}
//	g.Sink("clips", replay.Into(sink.Clips(dir, sink.ClipOptions{})), motion, flow.Edge{Buffer: 4, Policy: flow.Block})
func (w *Window) Into(s flow.Sink) flow.Sink {
	return flow.SinkFunc(func(ctx context.Context, in <-chan flow.Image) error {
		grace := w.StopGrace
		if grace <= 0 {
			grace = DefaultStopGrace
		}
		inner, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		var (
			mu       sync.Mutex
			timer    *time.Timer
			returned bool
		)
		stopWatch := context.AfterFunc(ctx, func() {
			mu.Lock()
			defer mu.Unlock()
			if !returned {
				timer = time.AfterFunc(grace, cancel)
			}
		})
		defer func() {
			stopWatch()
			mu.Lock()
			defer mu.Unlock()
			returned = true
			if timer != nil {
				timer.Stop()
			}
		}()
		ch := make(chan flow.Image)
		g, gctx := errgroup.WithContext(inner)
		g.Go(func() error {
			defer close(ch)
			return w.run(ctx, gctx, in, ch, true)
		})
		g.Go(func() error {
			err := s.Run(gctx, ch)
			for img := range ch { // s returned early: never block the replay
				img.Release()
			}
			return err
		})
		err := g.Wait()
		if cerr := ctx.Err(); cerr != nil && (err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			return errors.Join(err, cerr)
		}
		return err
	})
}

// run reads triggers until in closes or stop ends, and replays windows
// into out; send bounds the cache reads and sends. With graceful, the end
// of stop cuts the pending windows at the newest cached frame and replays
// them (Into); otherwise stop and send are one context and its end ends
// the replay (Run).
func (w *Window) run(stop, send context.Context, in <-chan flow.Image, out chan<- flow.Image, graceful bool) error {
	if w.Client == nil || w.Camera == "" {
		return errors.New("replay: Window needs a Client and a Camera")
	}
	q := &spanQueue{wake: make(chan struct{}, 1)}
	g, gctx := errgroup.WithContext(send)
	// stopCtx ends with stop, or when either goroutine fails.
	stopCtx, cancel := context.WithCancel(stop)
	defer cancel()
	defer context.AfterFunc(gctx, cancel)()
	g.Go(func() error {
		defer q.close()
		for {
			img, ok, err := flow.Recv(stopCtx, in)
			if err != nil && graceful && stop.Err() != nil {
				return nil // stopping: replay what is pending
			}
			if err != nil || !ok {
				return err
			}
			t := img.Time.Truncate(time.Millisecond)
			img.Release()
			w.triggers.Add(1)
			if q.add(span{start: t.Add(-w.Pre), end: t.Add(w.Post)}) {
				w.windows.Add(1)
			}
		}
	})
	g.Go(func() error { return w.replay(stopCtx, gctx, q, out, graceful) })
	return g.Wait()
}

// cursor is what a replay has emitted so far.
type cursor struct {
	t       time.Time // decoding mode: the newest frame time emitted (or window end played)
	id      cache.ID  // packet mode: the newest packet consumed
	number  int64     // packet mode: its Number
	needKey bool      // packet mode: a gap is being skipped
}

// replay plays the queue's windows until it is closed and empty.
func (w *Window) replay(stop, send context.Context, q *spanQueue, out chan<- flow.Image, graceful bool) error {
	cam := w.Client.Camera(w.Camera, w.Options)
	defer cam.Close()
	var cur cursor
	cut := false // stopping: play what the cache has, without waiting
	for {
		s, ok, done := q.head()
		if done {
			return nil
		}
		if !ok {
			stopped := stop.Done()
			if cut {
				stopped = nil
			}
			select {
			case <-q.wake:
			case <-stopped:
				if !graceful {
					return stop.Err()
				}
				cut = true
			case <-send.Done():
				return send.Err()
			}
			continue
		}
		end := s.end
		if !cut {
			if err := w.waitFor(stop, cam, end); err != nil {
				if !graceful || stop.Err() == nil {
					return err
				}
				cut = true
			}
		}
		if cut {
			_, last, err := cam.Span(send)
			if err != nil && !errors.Is(err, cache.ErrEmpty) && !errors.Is(err, cache.ErrUnknownCamera) {
				return err
			}
			if newest := last.Time(); err == nil && newest.Before(end) {
				w.logger().Info("window replay: stopping; the window is cut at the newest cached frame",
					"camera", w.Camera, "end", end, "newest", newest)
				end = newest
			}
		}
		var err error
		if w.Packets {
			err = w.playPackets(send, cam, &cur, s.start, end, out)
		} else {
			err = w.play(send, cam, &cur, s.start, end, out)
		}
		if err != nil {
			return err
		}
		if end.After(cur.t) {
			cur.t = end
		}
		if cut {
			q.played(s.end) // nothing more will come for this window
		} else {
			q.played(cur.t)
		}
	}
}

// waitFor blocks until the cache's newest entry is at or after end, or
// MaxWait passed.
func (w *Window) waitFor(ctx context.Context, cam *chrysalis.Camera, end time.Time) error {
	maxWait := w.MaxWait
	if maxWait <= 0 {
		maxWait = w.Post + DefaultMaxWait
	}
	ok, err := cam.WaitUntil(ctx, end, maxWait)
	if err != nil || ok {
		return err
	}
	_, last, _ := cam.Span(ctx)
	w.logger().Warn("cache did not reach the window end in time; replaying what it has",
		"camera", w.Camera, "end", end, "newest", last.Time(), "waited", maxWait)
	return nil
}

// windowIDs are the cache ids bounding [start, end]: every packet whose
// millisecond is in it.
func windowIDs(start, end time.Time) (lo, hi cache.ID) {
	return cache.IDAt(start), cache.ID{MS: uint64(end.UnixMilli()), Seq: ^uint64(0)}
}

// play replays [start, end] minus what is at or before cur.t, decoding
// (decoding mode), and advances cur.t to the last frame sent.
func (w *Window) play(ctx context.Context, cam *chrysalis.Camera, cur *cursor, start, end time.Time, out chan<- flow.Image) error {
	cursor := cur.t
	for attempt := 0; ; attempt++ {
		from := start
		if !cursor.IsZero() && !from.After(cursor) {
			from = cursor.Add(time.Millisecond)
		}
		oldest, _, err := cam.Span(ctx)
		if err != nil {
			if errors.Is(err, cache.ErrEmpty) || errors.Is(err, cache.ErrUnknownCamera) {
				return nil // nothing to replay
			}
			return err
		}
		if w.FromKeyframe && (cursor.IsZero() || from.After(cursor.Add(time.Millisecond))) {
			// Not continuing the previous window: back up to the keyframe
			// at or before its first packet, or, when that keyframe is at or
			// before the previous window's end, continue that window.
			ws, ok, err := cam.WindowStart(ctx, from, end)
			if err != nil {
				return err
			}
			if ok && ws.HasKeyframe {
				if kt := ws.Keyframe.ID.Time(); cursor.IsZero() || kt.After(cursor) {
					from = kt
				} else {
					from = cursor.Add(time.Millisecond)
				}
			}
		}
		if first := oldest.Time(); from.Before(first) {
			from = first
		}
		if from.After(end) {
			return nil
		}
		retry := false
		for img, err := range cam.Past(ctx, from, end) {
			if err != nil {
				if cerr := ctx.Err(); cerr != nil {
					return cerr
				}
				// The cache trimmed the start between Stats and Past.
				if errors.Is(err, chrysalis.ErrTrimmed) && attempt < 3 {
					retry = true
					break
				}
				return fmt.Errorf("replay: window replay of %q: %w", w.Camera, err)
			}
			if !cursor.IsZero() && !img.Time.After(cur.t) {
				img.Release()
				continue
			}
			if err := flow.Send(ctx, out, img); err != nil {
				return err
			}
			w.frames.Add(1)
			cur.t = img.Time
		}
		if !retry {
			return nil
		}
	}
}

// playPackets replays the packets of [start, end] after cur.id without
// decoding (packet mode) and advances cur.
func (w *Window) playPackets(ctx context.Context, cam *chrysalis.Camera, cur *cursor, start, end time.Time, out chan<- flow.Image) error {
	lo, hi := windowIDs(start, end)
	if !cur.id.IsZero() && lo.Compare(cur.id) <= 0 {
		lo = cur.id.Next()
	}
	if lo.Compare(hi) > 0 {
		return nil
	}
	ws, ok, err := cam.WindowStartIDs(ctx, lo, hi)
	if err != nil || !ok {
		return err
	}
	// Start at the keyframe at or before the window's first packet, or
	// continue the previous window when that keyframe was already played
	// (the window starts inside the GOP where the previous one ended).
	from, needKey, prev := ws.First.ID, true, int64(0)
	switch {
	case ws.HasKeyframe && !cur.id.IsZero() && ws.Keyframe.ID.Compare(cur.id) <= 0:
		from, needKey, prev = cur.id.Next(), cur.needKey, cur.number
	case ws.HasKeyframe:
		from = ws.Keyframe.ID
	default:
		// The keyframe was trimmed: start at the first one in the window.
	}
	for p, err := range cam.Packets(ctx, from, hi) {
		if err != nil {
			return fmt.Errorf("replay: window replay of %q: %w", w.Camera, err)
		}
		if media.NumberGap(prev, p.Number) {
			w.logger().Warn("window replay: gap in packet numbers; skipping to the next keyframe",
				"camera", w.Camera, "after", prev, "got", p.Number, "at", p.ID.String())
			needKey = true
		}
		if p.Number > 0 {
			prev = p.Number
		}
		cur.id, cur.number = p.ID, p.Number
		if needKey && !p.Keyframe {
			w.skipped.Add(1)
			cur.needKey = true
			continue
		}
		needKey, cur.needKey = false, false
		if err := flow.Send(ctx, out, packetImage(w.Camera, p)); err != nil {
			return err
		}
		w.frames.Add(1)
		if t := p.ID.Time(); t.After(cur.t) {
			cur.t = t
		}
	}
	return nil
}

// packetImage is the packet-mode image of p: the packet, no pixels.
func packetImage(camera string, p cache.Packet) flow.Image {
	pict := "?"
	if p.Keyframe {
		pict = "I"
	}
	return &chrysalis.ChImage{Camera: camera, Time: p.ID.Time(), ID: p.ID, Width: p.Width, Height: p.Height,
		Keyframe: p.Keyframe, PictType: pict, PTS: p.PTS, Packet: p}
}
