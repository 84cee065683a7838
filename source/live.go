package source

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/flow"
)

// DefaultRetryInterval is how often LiveSource looks for a camera that the
// cache does not know yet when WaitForCamera is set.
const DefaultRetryInterval = 500 * time.Millisecond

// LiveSource emits a camera's newest frames as they arrive in the cache.
//
// It loops on Camera.WaitLatest and sends each image: it never emits a
// frame it already emitted, and when the graph is slower than the camera
// the frames that arrived meanwhile are skipped (stale GOPs are not even
// decoded), so what it sends is as fresh as the cache allows. A send waits
// for the consumer's edge; with the graph's default drop-oldest edge it
// never waits.
//
// It converts on demand: before each image it waits until a consumer is
// waiting for one (flow.WaitDemand; every operator and sink of this module
// receives through flow.Recv, which signals it), so a sink that takes 5
// images a second from a 25 fps camera costs 5 conversions, and each image
// is the newest frame when the sink asked, one conversion old. A consumer
// that receives its channel by other means gets every new frame, as
// before. The camera's follower decodes every packet meanwhile; it stops
// when nothing asks for a frame for CameraOptions.LiveIdle (default 10 s)
// and restarts at the newest keyframe, so a sink slower than that waits
// for up to a GOP's decode on its next image.
//
// The zero value is not usable: set Client and Camera (or use [Live]).
type LiveSource struct {
	// Client reads the frame cache. Required.
	Client *chrysalis.Client
	// Camera is the camera id. Required.
	Camera string
	// Options chooses format, size and decoding (see
	// chrysalis.CameraOptions; the zero value gives full-size BGR24).
	Options chrysalis.CameraOptions
	// WaitForCamera makes Run wait for a camera the cache does not know yet
	// (chrysalis.ErrUnknownCamera), polling every RetryInterval, instead of
	// returning the error. Default false. An empty cache is always waited
	// on.
	WaitForCamera bool
	// RetryInterval is the WaitForCamera polling period. Default
	// DefaultRetryInterval (500 ms).
	RetryInterval time.Duration
	// MaxFPS caps the images emitted per second of wall time, each the
	// newest frame when its turn comes: the camera's follower keeps
	// decoding every packet, but the frames in between are never
	// converted, which a Throttle after the source cannot save (a
	// drop-oldest edge converts, then drops). Default 0: every new frame.
	MaxFPS float64
	// Logger defaults to Options.Logger, then slog.Default().
	Logger *slog.Logger

	emitted atomic.Int64
	cam     atomic.Pointer[chrysalis.Camera]
}

var _ flow.Source = (*LiveSource)(nil)

// Live returns a source that follows camera through cl. Set WaitForCamera
// on the result to wait for a camera that does not exist yet.
func Live(cl *chrysalis.Client, camera string, o chrysalis.CameraOptions) *LiveSource {
	return &LiveSource{Client: cl, Camera: camera, Options: o}
}

// Emitted counts the images sent so far; safe from any goroutine.
func (s *LiveSource) Emitted() int64 { return s.emitted.Load() }

// CameraStats are the decode counters of the Camera the current (or last)
// Run uses; zero before Run. Safe from any goroutine.
func (s *LiveSource) CameraStats() chrysalis.CameraStats {
	if c := s.cam.Load(); c != nil {
		return c.Stats()
	}
	return chrysalis.CameraStats{}
}

func (s *LiveSource) logger() *slog.Logger {
	switch {
	case s.Logger != nil:
		return s.Logger
	case s.Options.Logger != nil:
		return s.Options.Logger
	}
	return slog.Default()
}

// Run implements flow.Source. It returns ctx.Err() when ctx ends, or the
// first error the camera reports. The Camera it opens is closed before Run
// returns.
func (s *LiveSource) Run(ctx context.Context, out chan<- flow.Image) error {
	if s.Client == nil || s.Camera == "" {
		return errors.New("source: LiveSource needs a Client and a Camera")
	}
	cam := s.Client.Camera(s.Camera, s.Options)
	defer cam.Close()
	s.cam.Store(cam)
	retry := s.RetryInterval
	if retry <= 0 {
		retry = DefaultRetryInterval
	}
	waiting := false
	next := time.Now()
	owed := false // a demand taken and not answered with an image yet
	for {
		// Convert only for a consumer that is waiting (flow.WaitDemand):
		// the follower keeps decoding every packet, but a frame is
		// converted when the sink asks, so it reaches the sink one
		// conversion old instead of waiting in the edge. WaitDemand takes
		// the consumer's request: after a failed try (camera not there
		// yet) the image is still owed, and the consumer, blocked in the
		// same Recv, will not ask again.
		if !owed {
			if err := flow.WaitDemand(ctx); err != nil {
				return err
			}
			owed = true
		}
		img, err := cam.WaitLatest(ctx)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			if !s.WaitForCamera || !errors.Is(err, chrysalis.ErrUnknownCamera) {
				return err
			}
			if !waiting {
				waiting = true
				s.logger().Info("camera not in the cache yet; waiting", "camera", s.Camera, "retry", retry)
			}
			if err := sleep(ctx, retry); err != nil {
				return err
			}
			continue
		}
		if waiting {
			waiting = false
			s.logger().Info("camera appeared", "camera", s.Camera)
		}
		if err := flow.Send(ctx, out, img); err != nil {
			return err
		}
		owed = false
		s.emitted.Add(1)
		if s.MaxFPS > 0 {
			next = next.Add(time.Duration(float64(time.Second) / s.MaxFPS))
			if now := time.Now(); next.Before(now) {
				next = now // late: no burst to catch up
			}
			if err := sleep(ctx, time.Until(next)); err != nil {
				return err
			}
		}
	}
}

// sleep waits d or until ctx ends (then it returns ctx.Err()).
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sleepUntil waits until the wall clock reaches due, or ctx ends.
func sleepUntil(ctx context.Context, due time.Time) error {
	return sleep(ctx, time.Until(due))
}
