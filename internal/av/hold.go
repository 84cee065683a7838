package av

import (
	"errors"

	"github.com/asticode/go-astiav"
)

// FrameRef keeps a reference-counted reference to a decoded frame beyond
// its Decode callback, without copying pixels, so a caller can decode many
// packets and convert only the newest frame. The zero value is ready; Free
// releases it. Not safe for concurrent use.
type FrameRef struct {
	f     *astiav.Frame
	valid bool
	view  Frame
}

// Ref makes r refer to src (dropping what it referred to before).
func (r *FrameRef) Ref(src *Frame) error {
	if src == nil || src.f == nil {
		return errors.New("av: ref: no frame")
	}
	if r.f == nil {
		if r.f = astiav.AllocFrame(); r.f == nil {
			return errors.New("av: ref: allocating frame failed")
		}
	}
	r.Unref()
	if err := r.f.Ref(src.f); err != nil {
		return err
	}
	r.valid = true
	return nil
}

// Frame returns the referenced frame, or nil when r holds none. It stays
// valid until the next Ref, Unref or Free.
func (r *FrameRef) Frame() *Frame {
	if !r.valid {
		return nil
	}
	r.view.f = r.f
	return &r.view
}

// Unref drops the reference; r can be reused.
func (r *FrameRef) Unref() {
	if r.f != nil && r.valid {
		r.f.Unref()
	}
	r.valid = false
}

// Free releases r's FFmpeg frame. Idempotent.
func (r *FrameRef) Free() {
	if r.f != nil {
		r.f.Free()
		r.f = nil
	}
	r.valid = false
}
