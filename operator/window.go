package operator

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
)

// DefaultWindowMaxWait is added to Post to bound how long WindowReplay
// waits for the cache to reach the end of a window.
const DefaultWindowMaxWait = 10 * time.Second

// WindowReplay turns triggers into clips: for each image from in (a
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
// pending windows are finished, then Run returns nil.
//
// Window bounds have the cache's millisecond precision. With B-frames, a
// frame displayed at t+Post may be stored in a later packet; the cache is
// considered to hold t+Post once its newest packet is at t+Post.
type WindowReplay struct {
	// Client reads the frame cache. Required.
	Client *chrysalis.Client
	// Camera is the camera replayed (not necessarily the triggers' camera).
	// Required.
	Camera string
	// Pre and Post extend the window before and after each trigger. Default
	// 0 (a single frame).
	Pre, Post time.Duration
	// Options chooses format and size of the replayed images.
	Options chrysalis.CameraOptions
	// MaxWait bounds the wait for the cache to reach a window's end. 0
	// means Post + DefaultWindowMaxWait.
	MaxWait time.Duration
	// FromKeyframe starts each window's replay at the keyframe at or before
	// t-Pre instead of at t-Pre itself, so a clip remuxed from the frames
	// (which can only begin on a keyframe) keeps its whole pre-roll.
	// Default false: exactly the frames of [t-Pre, t+Post].
	FromKeyframe bool
	// Logger defaults to Options.Logger, then slog.Default().
	Logger *slog.Logger

	triggers, windows, frames atomic.Int64
}

var _ flow.Operator = (*WindowReplay)(nil)

// NewWindowReplay returns a WindowReplay of camera over [t-pre, t+post]
// for each trigger at t.
func NewWindowReplay(cl *chrysalis.Client, camera string, pre, post time.Duration, o chrysalis.CameraOptions) *WindowReplay {
	return &WindowReplay{Client: cl, Camera: camera, Pre: pre, Post: post, Options: o}
}

// Triggers counts the triggers received.
func (w *WindowReplay) Triggers() int64 { return w.triggers.Load() }

// Windows counts the distinct windows (merged triggers count once).
func (w *WindowReplay) Windows() int64 { return w.windows.Load() }

// Frames counts the frames sent.
func (w *WindowReplay) Frames() int64 { return w.frames.Load() }

func (w *WindowReplay) logger() *slog.Logger {
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
func (w *WindowReplay) Run(ctx context.Context, in <-chan flow.Image, out chan<- flow.Image) error {
	if w.Client == nil || w.Camera == "" {
		return errors.New("operator: WindowReplay needs a Client and a Camera")
	}
	q := &spanQueue{wake: make(chan struct{}, 1)}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer q.close()
		for {
			img, ok, err := recv(ctx, in)
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
	g.Go(func() error { return w.replay(ctx, q, out) })
	return g.Wait()
}

// replay plays the queue's windows until it is closed and empty.
func (w *WindowReplay) replay(ctx context.Context, q *spanQueue, out chan<- flow.Image) error {
	cam := w.Client.Camera(w.Camera, w.Options)
	defer cam.Close()
	var cursor time.Time // the newest frame time emitted (or window end played)
	for {
		s, ok, done := q.head()
		if done {
			return nil
		}
		if !ok {
			select {
			case <-q.wake:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := w.waitFor(ctx, s.end); err != nil {
			return err
		}
		// The head may have grown while we waited: play what we waited
		// for; the next pass plays the rest.
		end := s.end
		last, err := w.play(ctx, cam, s.start, end, cursor, out)
		if err != nil {
			return err
		}
		if last.After(cursor) {
			cursor = last
		}
		if end.After(cursor) {
			cursor = end
		}
		q.played(cursor)
	}
}

// waitFor blocks until the cache's newest entry is at or after end, or
// MaxWait passed.
func (w *WindowReplay) waitFor(ctx context.Context, end time.Time) error {
	maxWait := w.MaxWait
	if maxWait <= 0 {
		maxWait = w.Post + DefaultWindowMaxWait
	}
	deadline := time.Now().Add(maxWait)
	endMS := uint64(end.UnixMilli())
	c := w.Client.Cache()
	for {
		st, err := c.Stats(ctx, w.Camera)
		missing := errors.Is(err, cache.ErrEmpty) || errors.Is(err, cache.ErrUnknownCamera)
		if err != nil && !missing {
			return err
		}
		if err == nil && st.Last.MS >= endMS {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			w.logger().Warn("cache did not reach the window end in time; replaying what it has",
				"camera", w.Camera, "end", end, "newest", st.Last.Time(), "waited", maxWait)
			return nil
		}
		// A blocking read also waits for a camera that is missing or empty
		// (st.Last is then zero), as XREAD BLOCK does: no polling.
		if _, err := c.ReadAfter(ctx, w.Camera, st.Last, 1, min(left, time.Second)); err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return err
		}
	}
}

// play replays [start, end] minus what is at or before cursor, and
// returns the time of the last frame sent.
func (w *WindowReplay) play(ctx context.Context, cam *chrysalis.Camera, start, end, cursor time.Time, out chan<- flow.Image) (time.Time, error) {
	last := cursor
	for attempt := 0; ; attempt++ {
		from := start
		if !cursor.IsZero() && !from.After(cursor) {
			from = cursor.Add(time.Millisecond)
		}
		st, err := w.Client.Cache().Stats(ctx, w.Camera)
		if err != nil {
			if errors.Is(err, cache.ErrEmpty) || errors.Is(err, cache.ErrUnknownCamera) {
				return last, nil // nothing to replay
			}
			return last, err
		}
		if w.FromKeyframe && (cursor.IsZero() || from.After(cursor.Add(time.Millisecond))) {
			// Not continuing the previous window: back up to its keyframe.
			kf, err := w.Client.Cache().KeyframeAtOrBefore(ctx, w.Camera, cache.ID{MS: uint64(from.UnixMilli()), Seq: ^uint64(0)})
			if err == nil && (cursor.IsZero() || kf.ID.Time().After(cursor)) {
				from = kf.ID.Time()
			}
		}
		if first := st.First.Time(); from.Before(first) {
			from = first
		}
		if from.After(end) {
			return last, nil
		}
		retry := false
		for img, err := range cam.Past(ctx, from, end) {
			if err != nil {
				if cerr := ctx.Err(); cerr != nil {
					return last, cerr
				}
				// The cache trimmed the start between Stats and Past.
				if errors.Is(err, chrysalis.ErrTrimmed) && attempt < 3 {
					retry = true
					break
				}
				return last, fmt.Errorf("operator: window replay of %q: %w", w.Camera, err)
			}
			if !cursor.IsZero() && !img.Time.After(last) {
				img.Release()
				continue
			}
			if err := flow.Send(ctx, out, img); err != nil {
				return last, err
			}
			w.frames.Add(1)
			last = img.Time
		}
		if !retry {
			return last, nil
		}
	}
}
