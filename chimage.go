package chrysalis

import "github.com/chryscloud/chrysalis-go/media"

// The frame and its vocabulary live in the leaf package media (no cgo, no
// Redis), so the graph runtime and pure-Go operators build without FFmpeg.
// These aliases are the same types under the root package's names.
type (
	// ChImage is one decoded frame of a camera (media.ChImage).
	ChImage = media.ChImage
	// PixelFormat is the packed layout of ChImage.Data (media.PixelFormat).
	PixelFormat = media.PixelFormat
	// ImagePool recycles pixel buffers (media.ImagePool).
	ImagePool = media.ImagePool
	// ID is a frame's identity, its packet's cache id "<ms>-<seq>"
	// (media.ID).
	ID = media.ID
	// Detection is one object a model found in a frame (media.Detection).
	Detection = media.Detection
	// Detections is one model's output on one frame, attached to
	// ChImage.Detections (media.Detections).
	Detections = media.Detections
)

// Pixel formats. BGR24 is the zero value and the default: what OpenCV
// expects.
const (
	BGR24 = media.BGR24
	RGB24 = media.RGB24
	GRAY8 = media.GRAY8
)
