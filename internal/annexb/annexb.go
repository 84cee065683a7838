// Package annexb reads H.264 and HEVC access units in Annex B form (NAL
// units behind 00 00 01 / 00 00 00 01 start codes) without decoding them:
// which codec a stream is, whether an access unit starts a GOP, its
// in-band parameter sets, and the picture size its SPS announces. It is
// pure Go and has no dependencies, so the Redis cache can find keyframes
// and codec parameters in the Chrysalis Cloud layout, which stores neither.
package annexb

import (
	"bytes"
	"errors"
)

// Codec names, as FFmpeg spells them.
const (
	H264 = "h264"
	HEVC = "hevc"
)

var startCode = []byte{0, 0, 1}

// IsAnnexB reports whether b begins with a start code.
func IsAnnexB(b []byte) bool {
	return bytes.HasPrefix(b, startCode) || bytes.HasPrefix(b, []byte{0, 0, 0, 1})
}

// NALUnits calls fn with each NAL unit of b (header included, start code
// and trailing zero bytes excluded), in order, until fn returns false. The
// units alias b.
func NALUnits(b []byte, fn func(nal []byte) bool) {
	i := bytes.Index(b, startCode)
	for i >= 0 {
		rest := b[i+3:]
		end := bytes.Index(rest, startCode)
		nal := rest
		if end >= 0 {
			nal = rest[:end]
		}
		// A 4-byte start code (or trailing_zero_8bits) leaves zeros
		// behind the unit; a unit itself ends in its stop bit, never 0.
		for len(nal) > 0 && nal[len(nal)-1] == 0 {
			nal = nal[:len(nal)-1]
		}
		if len(nal) > 0 && !fn(nal) {
			return
		}
		if end < 0 {
			return
		}
		b = rest
		i = end
	}
}

// The two codecs' NAL headers tell each other apart: an HEVC header's
// first byte is even (its low bit is the top bit of a layer id, 0 in the
// base layer) and its second byte is nuh_temporal_id_plus1 (1..7), while
// every H.264 unit that can open a GOP (IDR slice, SPS, AUD; nal_ref_idc is
// nonzero for the first two) has an odd first byte. The one even H.264
// header that also looks like HEVC is 0x06 (an SEI, which would read as an
// HEVC TSA_R slice): it decides nothing and the scan goes on.

// hevcPlausible reports whether nal's header reads as an HEVC base-layer
// header.
func hevcPlausible(nal []byte) bool {
	return len(nal) >= 2 && nal[0]&0x81 == 0 && nal[0] != 0x06 && nal[1] >= 1 && nal[1] <= 7
}

// Detect returns the codec of access unit b, H264 or HEVC, from its first
// NAL unit whose header decides it, or "" when none does.
func Detect(b []byte) string {
	codec := ""
	NALUnits(b, func(nal []byte) bool {
		switch {
		case nal[0]&1 == 1:
			codec = H264
		case hevcPlausible(nal):
			codec = HEVC
		default:
			return true
		}
		return false
	})
	return codec
}

// Keyframe reports whether access unit b starts a GOP: for H.264 an IDR
// slice or an SPS before the first slice, for HEVC an IRAP picture (NAL
// types 16..23) or a VPS/SPS before the first slice. It needs no codec
// name (see the header rule above), and the scan stops at the first slice,
// so it reads only the unit headers at the front of b. The Redis cache's
// Lua scan applies the same rule.
func Keyframe(b []byte) bool {
	key := false
	NALUnits(b, func(nal []byte) bool {
		if nal[0]&1 == 1 {
			switch t := nal[0] & 0x1f; {
			case t == 5, t == 7:
				key = true
				return false
			case t >= 1 && t <= 4:
				return false
			}
			return true
		}
		if !hevcPlausible(nal) {
			return true
		}
		switch t := nal[0] >> 1 & 0x3f; {
		case t >= 16 && t <= 23, t == 32, t == 33:
			key = true
			return false
		case t < 32:
			return false // a non-IRAP slice
		}
		return true
	})
	return key
}

// ParamSets returns b's parameter-set units (H.264 SPS/PPS, HEVC
// VPS/SPS/PPS) as Annex B extradata (each behind 00 00 00 01), or nil.
func ParamSets(codec string, b []byte) []byte {
	var out []byte
	NALUnits(b, func(nal []byte) bool {
		param := false
		if codec == HEVC {
			t := nal[0] >> 1 & 0x3f
			param = t >= 32 && t <= 34
		} else {
			t := nal[0] & 0x1f
			param = t == 7 || t == 8
		}
		if param {
			out = append(out, 0, 0, 0, 1)
			out = append(out, nal...)
		}
		return true
	})
	return out
}

// Size is what an SPS says of the pictures.
type Size struct {
	// Width and Height are the displayed size (after the cropping window).
	Width, Height int
	// PixFmt is FFmpeg's name of the decoded format: yuv420p, yuv422p,
	// yuv444p or gray, with a 10le/12le suffix for deeper samples ("" when
	// unusual).
	PixFmt string
}

// ErrNoSPS: the access unit carries no sequence parameter set.
var ErrNoSPS = errors.New("annexb: no SPS in the access unit")

// SPSSize parses the first SPS in access unit b.
func SPSSize(codec string, b []byte) (Size, error) {
	var sps []byte
	NALUnits(b, func(nal []byte) bool {
		if (codec == HEVC && nal[0]>>1&0x3f == 33) || (codec != HEVC && nal[0]&0x1f == 7) {
			sps = nal
			return false
		}
		return true
	})
	if sps == nil {
		return Size{}, ErrNoSPS
	}
	if codec == HEVC {
		return hevcSPS(sps)
	}
	return h264SPS(sps)
}

var errShort = errors.New("annexb: truncated SPS")

// bits reads an RBSP (emulation prevention bytes removed) MSB first.
type bits struct {
	b   []byte
	pos int
	err error
}

func rbsp(nal []byte) []byte {
	out := make([]byte, 0, len(nal))
	zeros := 0
	for _, c := range nal {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}

func (r *bits) u(n int) uint {
	var v uint
	for range n {
		if r.pos >= len(r.b)*8 {
			r.err = errShort
			return 0
		}
		v = v<<1 | uint(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}

func (r *bits) ue() uint {
	z := 0
	for r.u(1) == 0 {
		if r.err != nil || z > 31 {
			r.err = errShort
			return 0
		}
		z++
	}
	return 1<<z - 1 + r.u(z)
}

func (r *bits) se() int {
	v := r.ue()
	if v&1 == 1 {
		return int(v+1) / 2
	}
	return -int(v / 2)
}

func pixFmt(chroma, depth uint) string {
	name := map[uint]string{0: "gray", 1: "yuv420p", 2: "yuv422p", 3: "yuv444p"}[chroma]
	switch {
	case name == "":
		return ""
	case depth == 8:
		return name
	case depth == 10 || depth == 12:
		return name + map[uint]string{10: "10le", 12: "12le"}[depth]
	}
	return ""
}

// crop returns the subsampling factors that scale a cropping window.
func crop(chroma uint) (x, y int) {
	switch chroma {
	case 1:
		return 2, 2
	case 2:
		return 2, 1
	}
	return 1, 1
}

// h264SPS parses seq_parameter_set_data (ITU-T H.264 7.3.2.1.1) up to the
// frame cropping.
func h264SPS(nal []byte) (Size, error) {
	r := &bits{b: rbsp(nal[1:])}
	profile := r.u(8)
	r.u(16) // constraint flags, level_idc
	r.ue()  // seq_parameter_set_id
	chroma, depth := uint(1), uint(8)
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chroma = r.ue()
		if chroma == 3 {
			r.u(1) // separate_colour_plane_flag
		}
		depth = r.ue() + 8
		r.ue()           // bit_depth_chroma_minus8
		r.u(1)           // qpprime_y_zero_transform_bypass_flag
		if r.u(1) == 1 { // seq_scaling_matrix_present_flag
			n := 8
			if chroma == 3 {
				n = 12
			}
			for i := range n {
				if r.u(1) == 0 {
					continue
				}
				size := 16
				if i >= 6 {
					size = 64
				}
				last, next := 8, 8
				for range size {
					if next != 0 {
						next = (last + r.se() + 256) % 256
					}
					if next != 0 {
						last = next
					}
				}
			}
		}
	}
	r.ue()          // log2_max_frame_num_minus4
	switch r.ue() { // pic_order_cnt_type
	case 0:
		r.ue()
	case 1:
		r.u(1)
		r.se()
		r.se()
		for range min(r.ue(), 255) {
			r.se()
		}
	}
	r.ue() // max_num_ref_frames
	r.u(1) // gaps_in_frame_num_value_allowed_flag
	w := int(r.ue()+1) * 16
	mapUnits := int(r.ue() + 1)
	frameMBsOnly := int(r.u(1))
	if frameMBsOnly == 0 {
		r.u(1) // mb_adaptive_frame_field_flag
	}
	r.u(1) // direct_8x8_inference_flag
	h := (2 - frameMBsOnly) * mapUnits * 16
	if r.u(1) == 1 { // frame_cropping_flag
		cx, cy := crop(chroma)
		if chroma == 0 {
			cx, cy = 1, 1
		}
		cy *= 2 - frameMBsOnly
		l, rt, t, b := int(r.ue()), int(r.ue()), int(r.ue()), int(r.ue())
		w -= cx * (l + rt)
		h -= cy * (t + b)
	}
	if r.err != nil {
		return Size{}, r.err
	}
	if w <= 0 || h <= 0 {
		return Size{}, errors.New("annexb: SPS with an empty picture")
	}
	return Size{Width: w, Height: h, PixFmt: pixFmt(chroma, depth)}, nil
}

// hevcSPS parses seq_parameter_set_rbsp (ITU-T H.265 7.3.2.2) up to the
// conformance window and the bit depth.
func hevcSPS(nal []byte) (Size, error) {
	if len(nal) < 3 {
		return Size{}, errShort
	}
	r := &bits{b: rbsp(nal[2:])}
	r.u(4) // sps_video_parameter_set_id
	subLayers := int(r.u(3))
	r.u(1)  // sps_temporal_id_nesting_flag
	r.u(88) // general profile: space, tier, idc, compatibility, constraints
	r.u(8)  // general_level_idc
	profilePresent := make([]uint, subLayers)
	levelPresent := make([]uint, subLayers)
	for i := range subLayers {
		profilePresent[i], levelPresent[i] = r.u(1), r.u(1)
	}
	if subLayers > 0 {
		for range 8 - subLayers {
			r.u(2) // reserved_zero_2bits
		}
	}
	for i := range subLayers {
		if profilePresent[i] == 1 {
			r.u(88)
		}
		if levelPresent[i] == 1 {
			r.u(8)
		}
	}
	r.ue() // sps_seq_parameter_set_id
	chroma := r.ue()
	if chroma == 3 {
		r.u(1) // separate_colour_plane_flag
	}
	w, h := int(r.ue()), int(r.ue())
	if r.u(1) == 1 { // conformance_window_flag
		cx, cy := crop(chroma)
		l, rt, t, b := int(r.ue()), int(r.ue()), int(r.ue()), int(r.ue())
		w -= cx * (l + rt)
		h -= cy * (t + b)
	}
	depth := r.ue() + 8
	if r.err != nil {
		return Size{}, r.err
	}
	if w <= 0 || h <= 0 {
		return Size{}, errors.New("annexb: SPS with an empty picture")
	}
	return Size{Width: w, Height: h, PixFmt: pixFmt(chroma, depth)}, nil
}
