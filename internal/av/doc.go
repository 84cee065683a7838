// Package av is the decode/convert machinery of the SDK: it turns encoded
// H.264/HEVC packets taken from the frame cache into raw frames (Decoder) and
// converts those frames into packed BGR24/RGB24/GRAY8 images of any size in a
// single swscale pass (Converter).
//
// It is built on github.com/asticode/go-astiav (FFmpeg 5.1). A few FFmpeg
// entry points that astiav v0.16.0 does not expose (avcodec_flush_buffers,
// AVFrame.best_effort_timestamp, av_frame_copy_props) are reached through a
// small cgo shim in ffmpeg.go.
//
// Neither Decoder nor Converter is safe for concurrent use; use one per
// goroutine (stream).
package av
