package av

// #cgo pkg-config: libswscale libavutil
// #include <stdint.h>
// #include <libswscale/swscale.h>
// #include <libavutil/frame.h>
//
// // chr_sws_scale converts src into one packed plane at dst (stride bytes
// // per row). dst is Go memory, used only for the duration of the call.
// static int chr_sws_scale(struct SwsContext *c, const AVFrame *src, uint8_t *dst, int stride) {
//     uint8_t *d[4] = {dst, NULL, NULL, NULL};
//     int ls[4] = {stride, 0, 0, 0};
//     return sws_scale(c, (const uint8_t * const *)src->data, src->linesize, 0, src->height, d, ls);
// }
//
// // chr_sws_scale_packed converts h rows of one packed plane at src (Go
// // memory, stride bytes per row, read only during the call) into dst's
// // planes.
// static int chr_sws_scale_packed(struct SwsContext *c, const uint8_t *src, int stride, int h, AVFrame *dst) {
//     const uint8_t *s[4] = {src, NULL, NULL, NULL};
//     int ls[4] = {stride, 0, 0, 0};
//     return sws_scale(c, s, ls, 0, h, dst->data, dst->linesize);
// }
//
// // chr_sws_scale_pp converts h rows of one packed plane at src (sstride
// // bytes per row) into one packed plane at dst (dstride bytes per row).
// // Both are Go memory, used only for the duration of the call.
// static int chr_sws_scale_pp(struct SwsContext *c, const uint8_t *src, int sstride, int h, uint8_t *dst, int dstride) {
//     const uint8_t *s[4] = {src, NULL, NULL, NULL};
//     int sls[4] = {sstride, 0, 0, 0};
//     uint8_t *d[4] = {dst, NULL, NULL, NULL};
//     int dls[4] = {dstride, 0, 0, 0};
//     return sws_scale(c, s, sls, 0, h, d, dls);
// }
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// swsBilinear and swsFastBilinear are SWS_BILINEAR and SWS_FAST_BILINEAR.
const (
	swsBilinear     = C.SWS_BILINEAR
	swsFastBilinear = C.SWS_FAST_BILINEAR
)

// scaler is a swscale context that writes straight into caller memory,
// which astiav v0.16.0's SoftwareScaleContext cannot.
type scaler struct{ c *C.struct_SwsContext }

func newScaler(k scaleKey, flags int) (*scaler, error) {
	c := C.sws_getContext(C.int(k.srcW), C.int(k.srcH), int32(k.srcFmt), C.int(k.dstW), C.int(k.dstH), int32(k.dstFmt),
		C.int(flags), nil, nil, nil)
	if c == nil {
		return nil, fmt.Errorf("av: convert: creating scaler %dx%d %s -> %dx%d %s failed",
			k.srcW, k.srcH, k.srcFmt.Name(), k.dstW, k.dstH, k.dstFmt.Name())
	}
	return &scaler{c: c}, nil
}

// scale converts src into dst (h rows of stride bytes).
func (s *scaler) scale(src *astiav.Frame, dst []byte, stride, h int) error {
	if len(dst) < stride*h || len(dst) == 0 {
		return errors.New("av: convert: destination too small")
	}
	if n := C.chr_sws_scale(s.c, frameC(src), (*C.uint8_t)(unsafe.Pointer(&dst[0])), C.int(stride)); int(n) != h {
		return fmt.Errorf("av: convert: scaling wrote %d of %d rows", int(n), h)
	}
	return nil
}

// scalePacked converts packed src (h rows of stride bytes) into dst, whose
// height rows it fills.
func (s *scaler) scalePacked(src []byte, stride, h int, dst *astiav.Frame) error {
	if len(src) < stride*(h-1)+1 || len(src) == 0 {
		return errors.New("av: convert: source too small")
	}
	if n := C.chr_sws_scale_packed(s.c, (*C.uint8_t)(unsafe.Pointer(&src[0])), C.int(stride), C.int(h), frameC(dst)); int(n) != dst.Height() {
		return fmt.Errorf("av: convert: scaling wrote %d of %d rows", int(n), dst.Height())
	}
	return nil
}

// scalePP converts packed src (h rows of sstride bytes) into packed dst
// (dh rows of dstride bytes).
func (s *scaler) scalePP(src []byte, sstride, h int, dst []byte, dstride, dh int) error {
	if len(src) == 0 || len(dst) < dstride*dh || len(dst) == 0 {
		return errors.New("av: convert: buffer too small")
	}
	n := C.chr_sws_scale_pp(s.c, (*C.uint8_t)(unsafe.Pointer(&src[0])), C.int(sstride), C.int(h),
		(*C.uint8_t)(unsafe.Pointer(&dst[0])), C.int(dstride))
	if int(n) != dh {
		return fmt.Errorf("av: convert: scaling wrote %d of %d rows", int(n), dh)
	}
	return nil
}

func (s *scaler) free() {
	if s != nil && s.c != nil {
		C.sws_freeContext(s.c)
		s.c = nil
	}
}
