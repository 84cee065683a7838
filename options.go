package chrysalis

import (
	"errors"
	"fmt"
)

// Bounds on the image size a caller may ask for (CameraOptions.Width and
// Height): one BGR24 image of MaxImageSide x MaxImageSide is 805 MB, and
// without a bound `--width 100000` asked for 16.9 GB and died out of memory.
const (
	// MaxImageSide bounds Width and Height.
	MaxImageSide = 16384
	// MaxUpscale bounds Width and Height relative to the source (see
	// CameraOptions.CheckSize).
	MaxUpscale = 4
)

// ErrBadOptions: CameraOptions that cannot be honoured (a negative or
// too large size, negative thread counts). See CameraOptions.Validate.
var ErrBadOptions = errors.New("bad camera options")

// Validate reports the first problem of o, wrapping ErrBadOptions: a
// negative Width or Height, one above MaxImageSide, negative Threads or
// LiveThreads.
func (o CameraOptions) Validate() error {
	switch {
	case o.Width < 0 || o.Height < 0:
		return fmt.Errorf("%w: negative size %dx%d", ErrBadOptions, o.Width, o.Height)
	case o.Width > MaxImageSide || o.Height > MaxImageSide:
		return fmt.Errorf("%w: size %dx%d is above %d on a side", ErrBadOptions, o.Width, o.Height, MaxImageSide)
	case o.Threads < 0 || o.LiveThreads < 0:
		return fmt.Errorf("%w: negative thread count", ErrBadOptions)
	}
	return nil
}

// CheckSize reports, wrapping ErrBadOptions, a requested Width or Height
// more than MaxUpscale times the source's srcW x srcH: an upscale that
// large only costs memory. 0 (keep the source's) always passes.
func (o CameraOptions) CheckSize(srcW, srcH int) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if srcW > 0 && o.Width > MaxUpscale*srcW || srcH > 0 && o.Height > MaxUpscale*srcH {
		return fmt.Errorf("%w: size %dx%d is more than %d times the source's %dx%d", ErrBadOptions, o.Width, o.Height, MaxUpscale, srcW, srcH)
	}
	return nil
}
