package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/asticode/go-astiav"
)

// ErrCodec: the input's video codec cannot be stored in the cache's
// layout (the cloud layout holds H.264 or HEVC only).
var ErrCodec = errors.New("codec not supported by the cache layout")

// AnnexBCache is implemented by a cache that stores a camera's packets as
// Annex B access units with the parameter sets in-band, which its readers
// decode without extradata (rediscache in the cloud layout). For such a
// camera the ingest runs every video packet through FFmpeg's
// h264_mp4toannexb or hevc_mp4toannexb bitstream filter: AVCC/HVCC
// packets (MP4, FLV/RTMP) become Annex B and every keyframe gets the
// SPS/PPS (and VPS) in front; input that is Annex B already (MPEG-TS,
// RTSP) passes through unchanged.
type AnnexBCache interface {
	StoresAnnexB(ctx context.Context, camera string) (bool, error)
}

// annexBFilter is one connection's mp4toannexb bitstream filter. It is
// owned by the reading goroutine.
type annexBFilter struct {
	bsf *astiav.BitStreamFilterContext
	out *astiav.Packet
}

// newAnnexBFilter returns the filter for the stream cp, or nil when the
// cache does not want Annex B for the camera. A codec other than H.264 or
// HEVC is an error for such a cache: its layout has no way to carry it.
func (in *Ingest) newAnnexBFilter(ctx context.Context, cp *astiav.CodecParameters, tb astiav.Rational) (*annexBFilter, error) {
	ac, ok := in.c.(AnnexBCache)
	if !ok {
		return nil, nil
	}
	want, err := ac.StoresAnnexB(ctx, in.cfg.Camera)
	if err != nil || !want {
		return nil, err
	}
	var name string
	switch cp.CodecID() {
	case astiav.CodecIDH264:
		name = "h264_mp4toannexb"
	case astiav.CodecIDHevc:
		name = "hevc_mp4toannexb"
	default:
		return nil, fmt.Errorf("%w: the cache stores Annex B H.264 or HEVC; the input is %s", ErrCodec, cp.CodecID())
	}
	f := astiav.FindBitStreamFilterByName(name)
	if f == nil {
		return nil, fmt.Errorf("FFmpeg has no %s bitstream filter", name)
	}
	bsf, err := astiav.AllocBitStreamFilterContext(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	a := &annexBFilter{bsf: bsf}
	if err := cp.Copy(bsf.InputCodecParameters()); err != nil {
		a.free()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	bsf.SetInputTimeBase(tb)
	if err := bsf.Initialize(); err != nil {
		a.free()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if a.out = astiav.AllocPacket(); a.out == nil {
		a.free()
		return nil, errors.New("allocating a packet failed")
	}
	return a, nil
}

// convert filters pkt (taking its reference) and returns the Annex B
// bytes, a Go copy. mp4toannexb gives one packet out per packet in.
func (a *annexBFilter) convert(pkt *astiav.Packet) ([]byte, error) {
	if err := a.bsf.SendPacket(pkt); err != nil {
		return nil, fmt.Errorf("annexb filter: %w", err)
	}
	var data []byte
	for {
		err := a.bsf.ReceivePacket(a.out)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return data, nil
		}
		if err != nil {
			return nil, fmt.Errorf("annexb filter: %w", err)
		}
		data = append(data, a.out.Data()...)
		a.out.Unref()
	}
}

// free releases the filter; nil-safe.
func (a *annexBFilter) free() {
	if a == nil {
		return
	}
	if a.out != nil {
		a.out.Free()
	}
	a.bsf.Free()
}
