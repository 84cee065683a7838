package ingest

// #cgo pkg-config: libavcodec libavutil
// #include <string.h>
// #include <libavcodec/avcodec.h>
// #include <libavutil/mem.h>
//
// // chParse runs a codec parser over one complete packet and reports the
// // picture size and pixel format it found (0/-1 when none).
// static void chParse(AVCodecParserContext *p, AVCodecContext *c, const uint8_t *data, int size,
//                     int *w, int *h, int *fmt) {
// 	uint8_t *out = NULL;
// 	int outSize = 0;
// 	p->flags |= PARSER_FLAG_COMPLETE_FRAMES;
// 	av_parser_parse2(p, c, &out, &outSize, data, size, AV_NOPTS_VALUE, AV_NOPTS_VALUE, 0);
// 	*w = p->width;
// 	*h = p->height;
// 	*fmt = p->format;
// }
//
// static int chSetExtradata(AVCodecContext *c, const uint8_t *data, int size) {
// 	c->extradata = av_mallocz(size + AV_INPUT_BUFFER_PADDING_SIZE);
// 	if (!c->extradata) return -1;
// 	memcpy(c->extradata, data, size);
// 	c->extradata_size = size;
// 	return 0;
// }
import "C"

import (
	"bytes"
	"unsafe"

	"github.com/asticode/go-astiav"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/avin"
)

// codecInfo is one generation of a stream's codec parameters. Packets point
// at the generation they belong to; the writer calls SetCodec when the
// generation it last wrote differs.
type codecInfo struct {
	cache.Codec
}

// codecFromParams reads a stream's codec parameters (the extradata is
// copied).
func codecFromParams(cp *astiav.CodecParameters) *codecInfo {
	c := &codecInfo{avin.Codec(cp)}
	c.LongName = codecLongName(cp.CodecID())
	return c
}

// codecLongName is the codec descriptor's long name ("H.264 / AVC / MPEG-4
// AVC / MPEG-4 part 10"); astiav v0.16.0 does not expose it.
func codecLongName(id astiav.CodecID) string {
	d := C.avcodec_descriptor_get(C.enum_AVCodecID(id))
	if d == nil || d.long_name == nil {
		return ""
	}
	return C.GoString(d.long_name)
}

// same reports whether two generations carry the same parameters (name,
// size, pixel format, extradata).
func (c *codecInfo) same(o *codecInfo) bool {
	if c == o {
		return true
	}
	if c == nil || o == nil {
		return false
	}
	return c.Name == o.Name && c.Width == o.Width && c.Height == o.Height && c.PixFmt == o.PixFmt &&
		bytes.Equal(c.Extradata, o.Extradata)
}

// sizeParser finds a keyframe's picture size and pixel format with
// FFmpeg's codec parser (H.264, HEVC, ...), without decoding. Demuxers such
// as MPEG-TS do not update the stream's codec parameters when in-band
// SPS/PPS change the resolution; this does.
type sizeParser struct {
	p   *C.AVCodecParserContext
	c   *C.AVCodecContext
	buf []byte
}

// newSizeParser returns nil when FFmpeg has no parser for the codec.
func newSizeParser(id astiav.CodecID, extradata []byte) *sizeParser {
	p := C.av_parser_init(C.int(id))
	if p == nil {
		return nil
	}
	c := C.avcodec_alloc_context3(nil)
	if c == nil {
		C.av_parser_close(p)
		return nil
	}
	c.codec_type = C.AVMEDIA_TYPE_VIDEO
	c.codec_id = C.enum_AVCodecID(id)
	if len(extradata) > 0 {
		// AVCC/hvcC streams: the parser learns the NAL length size here.
		C.chSetExtradata(c, (*C.uint8_t)(unsafe.Pointer(&extradata[0])), C.int(len(extradata)))
	}
	return &sizeParser{p: p, c: c}
}

// parse returns the size and pixel format announced by a keyframe packet;
// ok is false when the parser found none.
func (s *sizeParser) parse(data []byte) (w, h int, pixFmt string, ok bool) {
	if s == nil || len(data) == 0 {
		return 0, 0, "", false
	}
	// Parsers may read past the end: give them zeroed padding.
	n := len(data) + C.AV_INPUT_BUFFER_PADDING_SIZE
	if cap(s.buf) < n {
		s.buf = make([]byte, n)
	}
	b := s.buf[:n]
	copy(b, data)
	clear(b[len(data):])
	var cw, ch, cf C.int
	C.chParse(s.p, s.c, (*C.uint8_t)(unsafe.Pointer(&b[0])), C.int(len(data)), &cw, &ch, &cf)
	if cw <= 0 || ch <= 0 {
		return 0, 0, "", false
	}
	return int(cw), int(ch), avin.PixFmtName(astiav.PixelFormat(cf)), true
}

func (s *sizeParser) close() {
	if s == nil {
		return
	}
	C.av_parser_close(s.p)
	C.avcodec_free_context(&s.c)
}

// annexBParams returns the parameter-set NAL units (H.264 SPS/PPS, HEVC
// VPS/SPS/PPS) carried in-band by an Annex-B packet, as Annex-B extradata,
// or nil (AVCC packets, no parameter sets).
func annexBParams(codec string, data []byte) []byte {
	if !bytes.HasPrefix(data, []byte{0, 0, 1}) && !bytes.HasPrefix(data, []byte{0, 0, 0, 1}) {
		return nil
	}
	var out []byte
	for rest := data; ; {
		i := bytes.Index(rest, []byte{0, 0, 1})
		if i < 0 {
			break
		}
		rest = rest[i+3:]
		end := bytes.Index(rest, []byte{0, 0, 1})
		nal := rest
		if end >= 0 {
			nal = rest[:end]
			// A 4-byte start code leaves a trailing zero on the NAL.
			for len(nal) > 0 && nal[len(nal)-1] == 0 {
				nal = nal[:len(nal)-1]
			}
		}
		if len(nal) == 0 {
			continue
		}
		param := false
		switch codec {
		case "h264":
			t := nal[0] & 0x1f
			param = t == 7 || t == 8
		case "hevc":
			t := (nal[0] >> 1) & 0x3f
			param = t >= 32 && t <= 34
		}
		if param {
			out = append(out, 0, 0, 0, 1)
			out = append(out, nal...)
		}
		if end < 0 {
			break
		}
	}
	return out
}

// codecTracker follows the codec parameters packets carry: the stream's
// parameters at each connection, then in-band changes at keyframes (new
// extradata side data, as FLV sends it, or a new size announced by in-band
// SPS, which MPEG-TS demuxers do not report). It is owned by the reading
// goroutine; cur survives reconnects so an unchanged stream keeps its
// generation (and is not written to the cache again).
type codecTracker struct {
	cur       *codecInfo
	sp        *sizeParser // per connection
	sideExtra []byte      // per connection: the newest extradata side data
}

// open starts a connection with stream parameters cp and reports whether
// they differ from the previous connection's (false for the first).
func (t *codecTracker) open(cp *astiav.CodecParameters) (changed bool) {
	c := codecFromParams(cp)
	if !c.same(t.cur) {
		changed = t.cur != nil
		t.cur = c
	}
	t.sideExtra = nil
	t.sp = newSizeParser(cp.CodecID(), t.cur.Extradata)
	return changed
}

// close ends a connection.
func (t *codecTracker) close() {
	t.sp.close()
	t.sp = nil
}

// sideData notes a packet's new-extradata side data (any packet, even one
// that is skipped); it takes effect at the next keyframe.
func (t *codecTracker) sideData(pkt *astiav.Packet) {
	if sd := pkt.SideData(astiav.PacketSideDataTypeNewExtradata); len(sd) > 0 {
		t.sideExtra = sd
	}
}

// keyframe applies the parameters in force at a keyframe with bytes data
// and reports whether they changed (t.cur is then a new generation).
func (t *codecTracker) keyframe(cp *astiav.CodecParameters, data []byte) (changed bool) {
	c := codecFromParams(cp)
	if t.sideExtra != nil {
		c.Extradata = t.sideExtra
	}
	if w, h, pf, ok := t.sp.parse(data); ok && (w != c.Width || h != c.Height) {
		c.Width, c.Height = w, h
		if pf != "" {
			c.PixFmt = pf
		}
		if ps := annexBParams(c.Name, data); len(ps) > 0 {
			c.Extradata = ps
		}
	}
	if c.same(t.cur) {
		return false
	}
	if len(c.Extradata) == 0 && len(t.cur.Extradata) > 0 && c.Width == t.cur.Width && c.Height == t.cur.Height {
		c.Extradata = t.cur.Extradata
	}
	if c.same(t.cur) {
		return false
	}
	t.cur = c
	return true
}
