package mp4

// #cgo pkg-config: libavutil
// #include <libavutil/frame.h>
//
// static int ch_make_writable(AVFrame *f) { return av_frame_make_writable(f); }
import "C"

import (
	"github.com/asticode/go-astiav"
)

// makeWritable gives f its own buffer when an encoder still references it.
func makeWritable(f *astiav.Frame) error {
	if ret := C.ch_make_writable((*C.AVFrame)(f.UnsafePointer())); ret < 0 {
		return astiav.Error(ret)
	}
	return nil
}
