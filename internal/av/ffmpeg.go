package av

// #cgo pkg-config: libavcodec libavutil
// #include <libavcodec/avcodec.h>
// #include <libavutil/frame.h>
import "C"

import (
	"reflect"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// NoPTS is FFmpeg's AV_NOPTS_VALUE: pass it to Decoder.Decode when a packet
// has no pts/dts; Frame.Pts returns it when no timestamp is known.
const NoPTS int64 = C.AV_NOPTS_VALUE

// canReachCodecContext reports whether astiav.CodecContext still starts with
// its *C.AVCodecContext field, which codecContextC relies on. astiav v0.16.0
// has no accessor for that pointer (nor for avcodec_flush_buffers); if a
// future astiav changes the layout the decoder falls back to re-opening the
// codec context instead of flushing it (see Decoder.flushBuffers).
var canReachCodecContext = func() bool {
	t := reflect.TypeFor[astiav.CodecContext]()
	if t.NumField() == 0 {
		return false
	}
	f := t.Field(0)
	return f.Offset == 0 &&
		f.Type.Kind() == reflect.Pointer &&
		f.Type.Elem().Name() == "_Ctype_struct_AVCodecContext" &&
		f.Type.Elem().PkgPath() == reflect.TypeFor[astiav.CodecContext]().PkgPath()
}()

// codecContextC returns the AVCodecContext wrapped by cc, or nil when the
// astiav layout is not the expected one.
func codecContextC(cc *astiav.CodecContext) *C.AVCodecContext {
	if !canReachCodecContext || cc == nil {
		return nil
	}
	return *(**C.AVCodecContext)(unsafe.Pointer(cc))
}

// flushCodecBuffers calls avcodec_flush_buffers. It reports false when the
// codec context cannot be reached, in which case nothing was done.
func flushCodecBuffers(cc *astiav.CodecContext) bool {
	c := codecContextC(cc)
	if c == nil {
		return false
	}
	C.avcodec_flush_buffers(c)
	return true
}

func frameC(f *astiav.Frame) *C.AVFrame {
	return (*C.AVFrame)(f.UnsafePointer())
}

// bestEffortPts returns f's best_effort_timestamp, falling back to its pts.
func bestEffortPts(f *astiav.Frame) int64 {
	if ts := int64(frameC(f).best_effort_timestamp); ts != NoPTS {
		return ts
	}
	return f.Pts()
}

// concealed reports whether the decoder found errors in f's data and
// concealed them (decode_error_flags: invalid bitstream, missing
// reference, concealment active): the picture is not the one encoded.
func concealed(f *astiav.Frame) bool { return frameC(f).decode_error_flags != 0 }

// copyFrameProps copies the metadata (timestamps, key_frame, pict_type,
// colour properties, side data...) of src into dst, but not the pixels.
func copyFrameProps(dst, src *astiav.Frame) error {
	return astiavError(C.av_frame_copy_props(frameC(dst), frameC(src)))
}

func astiavError(ret C.int) error {
	if ret >= 0 {
		return nil
	}
	return astiav.Error(ret)
}

// inputPadding is AV_INPUT_BUFFER_PADDING_SIZE: the number of zeroed bytes
// FFmpeg's bitstream readers may read past the end of a packet.
const inputPadding = C.AV_INPUT_BUFFER_PADDING_SIZE

// FillPacket loads data into pkt followed by the zeroed padding FFmpeg
// requires, through *scratch (space the caller keeps between calls: the
// padded copy is built there, then astiav copies it to C). pkt's size is
// len(data); the padding stays allocated after it.
func FillPacket(pkt *astiav.Packet, scratch *[]byte, data []byte) error {
	var zeros [inputPadding]byte
	*scratch = append(append((*scratch)[:0], data...), zeros[:]...)
	if err := pkt.FromData(*scratch); err != nil {
		return err
	}
	pkt.SetSize(len(data))
	return nil
}
