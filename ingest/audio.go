package ingest

import (
	"context"
	"math"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/chryscloud/chrysalis-go/cache"
)

// AudioCache is implemented by a cache that keeps a camera's audio beside
// its video (rediscache: the cloud layout's input_rtmp_audio_stream). The
// ingest writes the first AAC stream's packets to it as ADTS frames, which
// decode without extradata, stamped on the video's capture clock, when the
// camera's video is stored as Annex B (AnnexBCache), that is in the cloud
// layout; the edge layout has no audio key.
type AudioCache interface {
	AppendAudio(ctx context.Context, camera string, ms int64, frame []byte) (cache.ID, error)
}

// audioWriteTimeout bounds one audio write. Audio is best effort: it is
// written from the reading goroutine, so a slow or failing cache drops
// audio frames (counted in Stats.AudioDropped) rather than stall the video.
const audioWriteTimeout = 200 * time.Millisecond

// videoRef ties the video's stream time to its capture clock: the newest
// video packet's DTS in seconds and its capture millisecond.
type videoRef struct {
	sec float64
	ms  int64
	ok  bool
}

// audioWriter writes one connection's audio. Owned by the reading
// goroutine.
type audioWriter struct {
	in   *Ingest
	ac   AudioCache
	idx  int
	tb   float64
	adts [3]byte // ADTS profile, sampling frequency index, channel configuration; adts[0] == 0xff: packets are ADTS already
}

// newAudioWriter returns the writer for fc's first AAC stream, or nil (no
// such stream, a cache without audio, or video not in Annex B).
func (in *Ingest) newAudioWriter(fc *astiav.FormatContext, annexB bool) *audioWriter {
	ac, ok := in.c.(AudioCache)
	if !ok || !annexB {
		return nil
	}
	for _, st := range fc.Streams() {
		cp := st.CodecParameters()
		if cp.MediaType() != astiav.MediaTypeAudio || cp.CodecID() != astiav.CodecIDAac {
			continue
		}
		a := &audioWriter{in: in, ac: ac, idx: st.Index(), tb: st.TimeBase().Float64()}
		asc := cp.ExtraData()
		switch {
		case len(asc) == 0:
			a.adts[0] = 0xff // MPEG-TS: the demuxer hands out ADTS frames
		case len(asc) >= 2:
			obj, freq, ch := asc[0]>>3, (asc[0]&7)<<1|asc[1]>>7, asc[1]>>3&0xf
			if obj < 1 || obj > 4 || freq > 12 {
				in.log.Warn("audio not written: ADTS cannot carry this AAC configuration", "object_type", obj, "frequency_index", freq)
				return nil
			}
			a.adts = [3]byte{obj - 1, freq, ch}
		default:
			return nil
		}
		return a
	}
	return nil
}

// write writes pkt when it is an audio packet of a's stream; it is nil-safe.
func (a *audioWriter) write(ctx context.Context, pkt *astiav.Packet, v videoRef) {
	if a == nil || pkt.StreamIndex() != a.idx || !v.ok {
		return
	}
	ts := pkt.Pts()
	if ts == astiav.NoPtsValue {
		ts = pkt.Dts()
	}
	if ts == astiav.NoPtsValue {
		return
	}
	ms := v.ms + int64(math.Round((float64(ts)*a.tb-v.sec)*1000))
	frame := pkt.Data()
	if a.adts[0] != 0xff {
		frame = append(adtsHeader(a.adts, len(frame)), frame...)
	}
	wctx, cancel := context.WithTimeout(ctx, audioWriteTimeout)
	defer cancel()
	if _, err := a.ac.AppendAudio(wctx, a.in.cfg.Camera, max(ms, 1), frame); err != nil {
		if a.in.audioDropped.Add(1) == 1 {
			a.in.log.Warn("audio frame not written (further ones are counted)", "err", err)
		}
		return
	}
	a.in.audioWritten.Add(1)
}

// adtsHeader is the 7-byte ADTS header (MPEG-4, no CRC) of a raw AAC frame
// of n bytes.
func adtsHeader(c [3]byte, n int) []byte {
	l := n + 7
	return []byte{0xff, 0xf1, c[0]<<6 | c[1]<<2 | c[2]>>2, (c[2]&3)<<6 | byte(l>>11), byte(l >> 3), byte(l&7)<<5 | 0x1f, 0xfc}
}
