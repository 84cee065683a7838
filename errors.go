package chrysalis

import (
	"errors"
	"fmt"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/media"
)

// Errors to branch on with errors.Is. The cache and Redis errors are the
// same values as in packages cache and rediscache.
var (
	// ErrUnknownCamera: nothing was ever cached for the camera.
	ErrUnknownCamera = cache.ErrUnknownCamera
	// ErrEmpty: the camera is known but its cache holds no packets.
	ErrEmpty = cache.ErrEmpty
	// ErrNotFound: nothing matches, e.g. no keyframe before a screenshot time.
	ErrNotFound = cache.ErrNotFound
	// ErrTrimmed: the requested window starts before the oldest cached
	// frame (the cache already trimmed it). See *WindowError.
	ErrTrimmed = errors.New("window already trimmed from the cache")
	// ErrBadWindow: start is after end.
	ErrBadWindow = errors.New("bad window: start is after end")
	// ErrBadTime: a zero time, a time before 1970 or after year 9999
	// (cache.CheckTime). Windows and screenshots reject it instead of
	// wrapping it to another time.
	ErrBadTime = cache.ErrBadTime
	// ErrBadImage: a ChImage whose fields do not describe its Data (see
	// ChImage.Check).
	ErrBadImage = media.ErrBadImage
	// ErrAuth, ErrTLS and ErrUnreachable classify Redis connection failures.
	ErrAuth        = rediscache.ErrAuth
	ErrTLS         = rediscache.ErrTLS
	ErrUnreachable = rediscache.ErrUnreachable
)

// WindowError describes a rejected [Start, End] window. It wraps ErrTrimmed
// or ErrBadWindow.
type WindowError struct {
	Camera      string
	Start, End  time.Time
	First, Last time.Time // what the cache holds (zero when not looked up)
	Err         error
}

func (e *WindowError) Error() string {
	if errors.Is(e.Err, ErrTrimmed) {
		return fmt.Sprintf("camera %q: window [%s, %s]: %v (cache holds [%s, %s])", e.Camera,
			e.Start.Format(time.RFC3339Nano), e.End.Format(time.RFC3339Nano), e.Err,
			e.First.Format(time.RFC3339Nano), e.Last.Format(time.RFC3339Nano))
	}
	return fmt.Sprintf("camera %q: window [%s, %s]: %v", e.Camera,
		e.Start.Format(time.RFC3339Nano), e.End.Format(time.RFC3339Nano), e.Err)
}

func (e *WindowError) Unwrap() error { return e.Err }
