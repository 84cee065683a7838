package operator

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/chryscloud/chrysalis-go/flow"
)

// Throttler caps each camera's frame rate by frame timestamps (img.Time),
// not by the wall clock: a 10 s replay sent as fast as possible through
// Throttle(5) passes 50 frames, as the live camera would have.
//
// Frames are passed on a fixed schedule of 1/FPS slots (so 25 fps throttled
// to 7 fps passes 7 frames a second, not every fourth frame); a frame is
// passed when its time reaches the next slot, within 1 ms (timestamps have
// millisecond precision). After a gap longer than a slot the schedule
// restarts at the next frame, so there is no burst to catch up. A frame
// more than a second older than the last one passed starts a new timeline
// (a looped file, a reconnect). Dropped frames are released and counted.
// Each camera (img.Camera) has its own schedule.
type Throttler struct {
	// FPS is the maximum rate in frames per second of frame time. 0 or
	// less passes every frame.
	FPS float64

	passed, dropped atomic.Int64
}

var _ flow.Operator = (*Throttler)(nil)

// Throttle returns an operator passing at most fps frames per second of
// frame time, per camera.
func Throttle(fps float64) *Throttler { return &Throttler{FPS: fps} }

// Dropped counts the frames dropped (and released).
func (t *Throttler) Dropped() int64 { return t.dropped.Load() }

// Passed counts the frames sent on.
func (t *Throttler) Passed() int64 { return t.passed.Load() }

type throttleState struct {
	next, last time.Time // next slot; time of the last frame passed
}

// slack absorbs the millisecond rounding of frame timestamps.
const slack = time.Millisecond

// restartAfter is how far back in time a frame must be to start a new
// timeline.
const restartAfter = time.Second

// Run implements flow.Operator.
func (t *Throttler) Run(ctx context.Context, in <-chan flow.Image, out chan<- flow.Image) error {
	var interval time.Duration
	if t.FPS > 0 {
		interval = time.Duration(float64(time.Second) / t.FPS)
	}
	cams := map[string]*throttleState{}
	for {
		img, ok, err := flow.Recv(ctx, in)
		if err != nil || !ok {
			return err
		}
		if interval > 0 && !t.admit(cams, img, interval) {
			img.Release()
			t.dropped.Add(1)
			continue
		}
		if err := flow.Send(ctx, out, img); err != nil {
			return err
		}
		t.passed.Add(1)
	}
}

// admit decides whether img takes the next slot of its camera's schedule.
func (t *Throttler) admit(cams map[string]*throttleState, img flow.Image, interval time.Duration) bool {
	ts := img.Time
	st := cams[img.Camera]
	switch {
	case st == nil:
		st = &throttleState{}
		cams[img.Camera] = st
	case ts.Before(st.last.Add(-restartAfter)):
		// A new timeline: start over.
	case ts.Before(st.next.Add(-slack)):
		return false
	case ts.Sub(st.next) < interval:
		// On schedule: take this slot, keep the grid.
		st.next, st.last = st.next.Add(interval), ts
		return true
	}
	// First frame, new timeline or after a gap: the schedule starts here.
	st.next, st.last = ts.Add(interval), ts
	return true
}
