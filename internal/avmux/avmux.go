// Package avmux is what the remuxing sinks (mp4.Writer and watch/hls)
// share when they hand cached encoded packets to an FFmpeg muxer: the clock
// that turns cache times and the packets' own timestamps into muxer
// timestamps, the codec lookups, the stream set-up and the packet hand-off.
//
// Nothing here decodes; the sinks keep their own policies (which packets to
// skip, where codec parameters come from when a keyframe lacks them).
package avmux

import (
	"fmt"
	"math"

	"github.com/asticode/go-astiav"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/av"
)

// DefaultCodec is the codec assumed when neither a packet nor the cache
// names one: Annex-B H.264 carries its parameters in-band.
const DefaultCodec = "h264"

// PacketMS is a packet's cache time in UTC ms: its ID's time, else its
// Timestamp.
func PacketMS(p cache.Packet) int64 {
	if p.ID.MS != 0 {
		return int64(p.ID.MS)
	}
	return p.Timestamp
}

// Clock stamps cached packets, taken in cache (decode) order, with muxer
// timestamps in ticks of 1/Rate s.
//
// The first packet decodes at 0. Each next one decodes its cache-time step
// (PacketMS) later, except that the packet's own DTS step is used instead
// when it is positive and agrees with the cache step to within 500 ms: the
// encoder's exact timing then replaces arrival jitter, while a reconnect, a
// looping clip or a stall (a larger disagreement) follows the cache clock.
// Decode times always increase. A packet's presentation time adds its own
// reorder delay (PTS-DTS).
//
// The zero Clock is not usable: set Rate. A Clock is not safe for
// concurrent use.
type Clock struct {
	// Rate is the ticks per second of the times Next returns: a multiple
	// of 1000 (1000: milliseconds; 90000: the MPEG clock).
	Rate int64

	started     bool
	lastMS      int64
	lastDTS     int64
	step        int64
	haveOrig    bool
	lastOrigDTS int64
	lastOrigTB  float64
}

// Next returns packet p's decode and presentation time in ticks.
func (c *Clock) Next(p cache.Packet) (dts, pts int64) {
	ms := PacketMS(p)
	orig := p.TimeBase > 0 && p.PTS != astiav.NoPtsValue && p.DTS != astiav.NoPtsValue
	if c.started {
		step := (ms - c.lastMS) * (c.Rate / 1000)
		if orig && c.haveOrig && p.TimeBase == c.lastOrigTB {
			od := c.ticks(p.DTS-c.lastOrigDTS, p.TimeBase)
			if maxSkew := c.Rate / 2; od > 0 && od-step <= maxSkew && step-od <= maxSkew {
				step = od
			}
		}
		dts = max(c.lastDTS+step, c.lastDTS+1)
		c.step = dts - c.lastDTS
	} else {
		c.started = true
	}
	pts = dts
	if orig && p.PTS > p.DTS {
		pts += c.ticks(p.PTS-p.DTS, p.TimeBase)
	}
	c.lastMS, c.lastDTS = ms, dts
	c.haveOrig, c.lastOrigDTS, c.lastOrigTB = orig, p.DTS, p.TimeBase
	return dts, pts
}

// Step is the decode-time step from the packet before to the last one
// Next stamped, in ticks; 0 until Next has stamped two packets.
func (c *Clock) Step() int64 { return c.step }

// ticks converts d units of time base tb (seconds per unit) to ticks.
func (c *Clock) ticks(d int64, tb float64) int64 {
	return int64(math.Round(float64(d) * tb * float64(c.Rate)))
}

// CodecID maps a cache codec name (as av.FindDecoder reads it) to FFmpeg's
// codec id. The error names the codec; callers add their prefix.
func CodecID(name string) (astiav.CodecID, error) {
	c := av.FindDecoder(name)
	if c == nil {
		return 0, fmt.Errorf("unknown codec %q", name)
	}
	return c.ID(), nil
}

// PacketCodec is the codec information keyframe p carries (an ingest puts
// it on every keyframe); any of it may be missing.
func PacketCodec(p cache.Packet) cache.Codec {
	return cache.Codec{Name: p.CodecName, Width: p.Width, Height: p.Height, PixFmt: p.PixFmt, Extradata: p.Extradata}
}

// SetCodecParameters describes a video stream of codec id with cd's
// parameters in cp: the size when cd knows it, the pixel format when FFmpeg
// knows its name, and the extradata. The codec tag is cleared so the muxer
// picks its own. cd.Name is not read.
func SetCodecParameters(cp *astiav.CodecParameters, id astiav.CodecID, cd cache.Codec) error {
	cp.SetMediaType(astiav.MediaTypeVideo)
	cp.SetCodecID(id)
	cp.SetCodecTag(0)
	if cd.Width > 0 && cd.Height > 0 {
		cp.SetWidth(cd.Width)
		cp.SetHeight(cd.Height)
	}
	if pf := astiav.FindPixelFormatByName(cd.PixFmt); cd.PixFmt != "" && pf != astiav.PixelFormatNone {
		cp.SetPixelFormat(pf)
	}
	if len(cd.Extradata) > 0 {
		if err := cp.SetExtraData(cd.Extradata); err != nil {
			return fmt.Errorf("setting extradata: %w", err)
		}
	}
	return nil
}

// Packet is one encoded video packet for WritePacket; its times are in the
// time base WritePacket is given.
type Packet struct {
	Data          []byte
	PTS, DTS, Dur int64
	Key           bool
}

// WritePacket hands p to fc's interleaving muxer as a packet of stream st:
// p.Data is copied into pkt through *buf (scratch space the caller keeps
// between calls, extended with FFmpeg's zeroed padding), and p's times are
// rescaled from tb to the stream's time base. The muxer takes pkt's
// reference and leaves it blank; on a muxer error pkt is unreferenced.
// Errors are FFmpeg's, unwrapped: callers add their context.
func WritePacket(fc *astiav.FormatContext, st *astiav.Stream, pkt *astiav.Packet, buf *[]byte, tb astiav.Rational, p Packet) error {
	if err := av.FillPacket(pkt, buf, p.Data); err != nil {
		return err
	}
	pkt.SetStreamIndex(st.Index())
	pkt.SetPts(p.PTS)
	pkt.SetDts(p.DTS)
	pkt.SetDuration(p.Dur)
	var fl astiav.PacketFlags
	if p.Key {
		fl = fl.Add(astiav.PacketFlagKey)
	}
	pkt.SetFlags(fl)
	pkt.RescaleTs(tb, st.TimeBase())
	pkt.SetPos(-1)
	if err := fc.WriteInterleavedFrame(pkt); err != nil {
		pkt.Unref()
		return err
	}
	return nil
}
