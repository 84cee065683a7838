package source

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/flow"
)

// ReplaySource emits every frame of a camera's cache over [Start, End]
// (inclusive, millisecond precision), oldest first, then returns nil.
//
// Errors are Camera.Past's: a window that starts before the oldest cached
// frame is a *chrysalis.WindowError wrapping chrysalis.ErrTrimmed, start
// after end wraps chrysalis.ErrBadWindow.
//
// The zero value is not usable: set Client, Camera, Start and End (or use
// [Replay]).
type ReplaySource struct {
	// Client reads the frame cache. Required.
	Client *chrysalis.Client
	// Camera is the camera id. Required.
	Camera string
	// Start and End bound the window (inclusive).
	Start, End time.Time
	// Options chooses format, size and decoding. With KeyframesOnly, one
	// image per keyframe.
	Options chrysalis.CameraOptions
	// Pace emits each frame at its original timing relative to the first
	// one (by frame timestamps, scaled by Speed), as the camera delivered
	// them. When the consumer or the decoder falls behind, frames are sent
	// as soon as possible until the schedule is met again; none is
	// skipped. Default false: as fast as the consumer takes them.
	Pace bool
	// Speed scales pacing: 2 replays twice as fast as real time. Default 1.
	Speed float64

	emitted atomic.Int64
}

var _ flow.Source = (*ReplaySource)(nil)

// Replay returns a source that emits camera's frames over [start, end];
// pace emits them at their original timing, otherwise as fast as the
// consumer takes them.
func Replay(cl *chrysalis.Client, camera string, start, end time.Time, o chrysalis.CameraOptions, pace bool) *ReplaySource {
	return &ReplaySource{Client: cl, Camera: camera, Start: start, End: end, Options: o, Pace: pace}
}

// Emitted counts the images sent so far; safe from any goroutine.
func (s *ReplaySource) Emitted() int64 { return s.emitted.Load() }

// Run implements flow.Source.
func (s *ReplaySource) Run(ctx context.Context, out chan<- flow.Image) error {
	if s.Client == nil || s.Camera == "" {
		return errors.New("source: ReplaySource needs a Client and a Camera")
	}
	speed := s.Speed
	if speed <= 0 {
		speed = 1
	}
	cam := s.Client.Camera(s.Camera, s.Options)
	defer cam.Close()
	var first, wall0 time.Time
	for img, err := range cam.Past(ctx, s.Start, s.End) {
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return err
		}
		if s.Pace {
			if first.IsZero() {
				first, wall0 = img.Time, time.Now()
			}
			due := wall0.Add(time.Duration(float64(img.Time.Sub(first)) / speed))
			if err := sleepUntil(ctx, due); err != nil {
				img.Release()
				return err
			}
		}
		if err := flow.Send(ctx, out, img); err != nil {
			return err
		}
		s.emitted.Add(1)
	}
	return ctx.Err()
}
