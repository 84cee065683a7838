package sink

// #cgo pkg-config: libavutil
// #include <string.h>
// #include <libavutil/frame.h>
//
// // ch_fill_packed makes f writable and copies h rows of rowBytes bytes
// // from src (stride bytes apart) into its first plane.
// static int ch_fill_packed(AVFrame *f, const uint8_t *src, int stride, int rowBytes, int h) {
// 	int ret = av_frame_make_writable(f);
// 	if (ret < 0) return ret;
// 	if (f->linesize[0] < rowBytes || f->height < h) return -22; // AVERROR(EINVAL)
// 	for (int y = 0; y < h; y++) memcpy(f->data[0] + (size_t)y * f->linesize[0], src + (size_t)y * stride, rowBytes);
// 	return 0;
// }
//
// static int ch_make_writable(AVFrame *f) { return av_frame_make_writable(f); }
import "C"

import (
	"errors"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// fillPacked copies packed pixels (h rows, stride bytes apart, rowBytes
// used per row) into f's first plane, which must be allocated for them.
// src is only read during the call.
func fillPacked(f *astiav.Frame, src []byte, stride, rowBytes, h int) error {
	if len(src) < (h-1)*stride+rowBytes {
		return errors.New("sink: pixel buffer too small")
	}
	ret := C.ch_fill_packed((*C.AVFrame)(f.UnsafePointer()), (*C.uint8_t)(unsafe.Pointer(&src[0])), C.int(stride), C.int(rowBytes), C.int(h))
	if ret < 0 {
		return astiav.Error(ret)
	}
	return nil
}

// makeWritable gives f its own buffer when an encoder still references it.
func makeWritable(f *astiav.Frame) error {
	if ret := C.ch_make_writable((*C.AVFrame)(f.UnsafePointer())); ret < 0 {
		return astiav.Error(ret)
	}
	return nil
}
