package record

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chryscloud/chrysalis-go/flow"
)

// Trigger is a flow sink that switches a camera's recording on at each
// image it receives (a trigger, for example the frames operator.Motion
// emits) and off Hold after the last one:
//
//	g.Sink("record", &record.Trigger{Recorder: rec, Hold: 10 * time.Second}, motion)
//
// A trigger at t while the camera is off calls StartCamera(t), so
// recording starts at the keyframe at or before t - PreRoll; each later
// trigger moves the end to its time + Hold; when the wall clock passes the
// end without a new trigger, StopCamera(end) records through end +
// PostRoll and writes the Switch. The recorder learns the pending end at
// each trigger, so the recording stops with the last packet at or before
// it even when that timer fires late on a busy machine. Triggers are stamped by their image's Time (cache time). When
// the input closes or ctx ends while recording, the camera is switched off
// at the earlier of now and the pending end.
//
// A Trigger is run by one graph at a time; it releases every image.
type Trigger struct {
	Recorder *Recorder
	// Camera is the camera to switch; "" takes each image's Camera.
	Camera string
	// Hold is how long recording continues after the last trigger.
	// Default 10 s.
	Hold time.Duration
}

// DefaultHold is Trigger.Hold's default.
const DefaultHold = 10 * time.Second

// Run implements flow.Sink.
func (tr *Trigger) Run(ctx context.Context, in <-chan flow.Image) error {
	if tr.Recorder == nil {
		return errors.New("record: Trigger without a Recorder")
	}
	hold := tr.Hold
	if hold == 0 {
		hold = DefaultHold
	}
	if hold < 0 {
		return fmt.Errorf("record: negative Trigger.Hold %v", hold)
	}
	type state struct {
		on  bool
		end time.Time
	}
	cams := map[string]*state{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	// arm sets the timer to the earliest pending end.
	arm := func() {
		var next time.Time
		for _, s := range cams {
			if s.on && (next.IsZero() || s.end.Before(next)) {
				next = s.end
			}
		}
		timer.Stop()
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), 0))
		}
	}
	stop := func(ctx context.Context, id string, s *state, at time.Time) error {
		s.on = false
		return tr.Recorder.StopCamera(ctx, id, at)
	}
	finish := func() error {
		// The graph is ending: switch off now, even past ctx's end.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		var errs []error
		now := time.Now()
		for id, s := range cams {
			if s.on {
				at := s.end
				if now.Before(at) {
					at = now
				}
				errs = append(errs, stop(sctx, id, s, at))
			}
		}
		return errors.Join(errs...)
	}
	for {
		select {
		case <-ctx.Done():
			return errors.Join(finish(), ctx.Err())
		case img, ok := <-in:
			if !ok {
				return finish()
			}
			id, t := tr.Camera, img.Time
			if id == "" {
				id = img.Camera
			}
			img.Release()
			s := cams[id]
			if s == nil {
				s = &state{}
				cams[id] = s
			}
			if !s.on {
				if err := tr.Recorder.StartCamera(ctx, id, t); err != nil {
					if errors.Is(err, ErrUnknownCamera) {
						return err
					}
					tr.Recorder.o.Logger.Warn("record: trigger", "err", err) // switched; the Switch not written
				}
				s.on = true
			} else if c := tr.Recorder.cams[id]; c != nil {
				c.switchOn(t) // still on: cancels the pending switch-off set below
			}
			if e := t.Add(hold); e.After(s.end) {
				s.end = e
			}
			if c := tr.Recorder.cams[id]; c != nil {
				// The switch-off is known now: the recorder ends with the
				// last packet at or before it however late the timer below
				// fires (which then writes the Switch).
				c.switchOff(s.end)
			}
			arm()
		case <-timer.C:
			now := time.Now()
			var errs []error
			for id, s := range cams {
				if s.on && !now.Before(s.end) {
					if err := stop(ctx, id, s, s.end); errors.Is(err, ErrUnknownCamera) {
						errs = append(errs, err)
					} else if err != nil {
						tr.Recorder.o.Logger.Warn("record: trigger", "err", err)
					}
				}
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			arm()
		}
	}
}
