package av

import "github.com/asticode/go-astiav"

// Frame is a decoded picture in system memory. It is owned by the Decoder
// that produced it and only valid inside the Decode/Flush callback; copy the
// pixels out (Converter.Convert) before returning.
type Frame struct {
	f *astiav.Frame
}

// Pts is the frame's presentation timestamp in the stream time base:
// FFmpeg's best-effort timestamp, else the packet pts, else NoPTS.
func (f *Frame) Pts() int64 { return bestEffortPts(f.f) }

// Width is the picture width in pixels.
func (f *Frame) Width() int { return f.f.Width() }

// Height is the picture height in pixels.
func (f *Frame) Height() int { return f.f.Height() }

// KeyFrame reports whether the frame is a keyframe (IDR/IRAP).
func (f *Frame) KeyFrame() bool { return f.f.KeyFrame() }

// PictType is the picture type: "I", "P", "B", "S", "SI", "SP", "BI", or ""
// when unknown.
func (f *Frame) PictType() string {
	switch f.f.PictureType() {
	case astiav.PictureTypeI:
		return "I"
	case astiav.PictureTypeP:
		return "P"
	case astiav.PictureTypeB:
		return "B"
	case astiav.PictureTypeS:
		return "S"
	case astiav.PictureTypeSi:
		return "SI"
	case astiav.PictureTypeSp:
		return "SP"
	case astiav.PictureTypeBi:
		return "BI"
	}
	return ""
}

// PixFmt is the FFmpeg name of the frame's pixel format ("yuv420p"...).
func (f *Frame) PixFmt() string { return f.f.PixelFormat().Name() }

// AVFrame exposes the underlying astiav frame for advanced uses. The same
// ownership rules apply: do not retain, modify or free it.
func (f *Frame) AVFrame() *astiav.Frame { return f.f }
