// Package decode is the one decode session of the module: it turns encoded
// packets (media.Packet, from a cache or straight from a demuxer) into
// decoded frames and pooled images. Camera (live, past, screenshot) and
// source.URL both use it, so the rules below hold on every read path:
//
//   - Identity: each output frame is labelled with the packet it was
//     decoded from (matched by pts, so B-frames get their own packet, not
//     the one that happened to be fed last). Its ID is that packet's id.
//   - Time: a frame's Time is its packet's cache millisecond plus the
//     packet's reorder delay (pts − dts) in the stream's time base, i.e.
//     its presentation time on the cache clock. Without B-frames it is the
//     packet's millisecond.
//   - Gaps: packets carry a running Number. When a packet's Number does not
//     follow the previous one (lost packets, an outage, a trim), the frames
//     already decoded are drained, the decoder is reset, and nothing is
//     decoded until the next keyframe: a P-frame is never decoded against
//     the wrong GOP. Gaps and skipped packets are counted.
//   - Corrupt packets: counted; decoding skips to the next keyframe.
//   - Codec changes (a reconnect with new parameters, a resolution change):
//     the old decoder is drained and a new one made.
package decode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/chryscloud/chrysalis-go/internal/av"
	"github.com/chryscloud/chrysalis-go/media"
)

// Counters are a session's counters; several sessions (a camera's live and
// screenshot decoders) may share one. Safe to read from any goroutine.
type Counters struct {
	// Decoded counts packets sent to a decoder; Converted counts images.
	Decoded, Converted atomic.Int64
	// Corrupt counts packets the decoder rejected.
	Corrupt atomic.Int64
	// Skipped counts packets not decoded because no keyframe preceded them
	// (after a gap, a corrupt packet, or at the start of a read).
	Skipped atomic.Int64
	// Gaps counts discontinuities in packet numbers.
	Gaps atomic.Int64
	// Reinits counts decoder re-creations after a codec change.
	Reinits atomic.Int64
}

// Options configures a Session.
type Options struct {
	// Camera names the images and log lines.
	Camera string
	// Format, Width and Height are the images' layout (see
	// chrysalis.CameraOptions).
	Format        media.PixelFormat
	Width, Height int
	// Threads and HWDevice go to the decoder (av.DecoderOptions).
	Threads  int
	HWDevice string
	// OffThread decodes on a C thread of the decoder's own
	// (av.DecoderOptions.OffThread): for a live follower, which decodes
	// each packet alone as it arrives.
	OffThread bool
	// Pool supplies and recycles image buffers. Required.
	Pool *media.ImagePool
	// Counters may be shared; nil gives the session its own.
	Counters *Counters
	// CodecInfo returns the stored codec parameters for a keyframe that
	// carries none (ok false: none stored). Nil: none.
	CodecInfo func(ctx context.Context) (cd media.Codec, ok bool, err error)
	// CheckSize, when set, vets the requested Width and Height against a
	// source size before the first conversion of that size (a huge upscale
	// is refused rather than allocated).
	CheckSize func(srcW, srcH int) error
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// FrameFunc receives a decoded frame and the packet it came from. f is only
// valid during the call.
type FrameFunc func(f *av.Frame, p media.Packet) error

// Session is one decoder with its converter and the bookkeeping that maps
// output frames back to their packets. Not safe for concurrent use; Close
// releases it.
type Session struct {
	o    Options
	c    *Counters
	log  *slog.Logger
	dec  *av.Decoder
	cd   media.Codec
	conv *Converter

	fed      media.Packet // last packet fed
	hasFed   bool
	needKey  bool // skip packets until the next keyframe
	meta     map[int64]media.Packet
	lastMeta media.Packet
}

// New returns a session; the decoder is made at the first keyframe.
func New(o Options) *Session {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Pool == nil {
		o.Pool = new(media.ImagePool)
	}
	c := o.Counters
	if c == nil {
		c = new(Counters)
		o.Counters = c
	}
	return &Session{o: o, c: c, log: o.Logger, meta: map[int64]media.Packet{}, needKey: true, conv: NewConverter(o)}
}

// Converter turns decoded frames into pooled images labelled with their
// packets: the conversion half of a Session, for a goroutine that converts
// frames another goroutine decoded. Not safe for concurrent use.
type Converter struct {
	o       Options
	c       *Counters
	conv    av.Converter
	checked [2]int // the source size CheckSize passed
}

// NewConverter returns a converter with o's layout, pool and counters.
func NewConverter(o Options) *Converter {
	if o.Pool == nil {
		o.Pool = new(media.ImagePool)
	}
	c := o.Counters
	if c == nil {
		c = new(Counters)
	}
	return &Converter{o: o, c: c}
}

// Close releases the scaler. Idempotent.
func (cv *Converter) Close() { _ = cv.conv.Close() }

// Close releases the decoder and converter. Idempotent.
func (s *Session) Close() {
	_ = s.dec.Close()
	s.dec = nil
	s.conv.Close()
}

// Jump forgets the decoder's position and what it buffered: the caller is
// about to feed a keyframe that does not follow the last packet (a live
// reader skipping stale GOPs). It is not counted as a gap.
func (s *Session) Jump() {
	if s.dec != nil {
		s.dec.Reset()
	}
	s.forget()
}

func (s *Session) forget() {
	clear(s.meta)
	s.hasFed, s.needKey = false, true
}

// gap reports whether p does not follow the last packet fed. Writers that
// do not number packets (Number 0) are never seen as gapped; a restarted
// writer (numbers starting again) is.
func (s *Session) gap(p media.Packet) bool {
	return s.hasFed && media.NumberGap(s.fed.Number, p.Number)
}

// Feed decodes p and calls fn with every frame that comes out. After a gap
// it first drains the frames decoded before it, then skips to the next
// keyframe.
func (s *Session) Feed(ctx context.Context, p media.Packet, fn FrameFunc) error {
	if s.gap(p) && !s.needKey {
		s.c.Gaps.Add(1)
		s.log.Warn("gap in packet numbers: skipping to the next keyframe",
			"after", s.fed.ID.String(), "number", s.fed.Number, "next", p.ID.String(), "next_number", p.Number)
		if err := s.Flush(fn); err != nil {
			return err
		}
	}
	if s.needKey || s.dec == nil {
		if !p.Keyframe {
			s.c.Skipped.Add(1)
			s.fed, s.hasFed = p, true // the gap check follows the skipped packets
			return nil
		}
		if err := s.restart(ctx, p, fn); err != nil {
			return err
		}
	} else if p.Keyframe {
		// A reconnect may have brought new parameters: drain the old
		// decoder's frames, then re-create it.
		if err := s.restart(ctx, p, fn); err != nil {
			return err
		}
	}
	if len(s.meta) > 1024 {
		clear(s.meta) // frames the decoder dropped; never grow without bound
	}
	s.meta[p.PTS] = p
	s.lastMeta = p
	s.fed, s.hasFed = p, true
	s.c.Decoded.Add(1)
	err := s.dec.Decode(p.Data, p.PTS, p.DTS, p.Keyframe, s.label(fn))
	var de *av.DecodeError
	if errors.As(err, &de) {
		s.c.Corrupt.Add(1)
		s.log.Warn("corrupt packet: its frames are dropped; skipping to the next keyframe", "id", p.ID.String(), "err", err)
		s.dec.Reset()
		clear(s.meta)
		s.needKey = true
		return nil
	}
	return err
}

func (s *Session) label(fn FrameFunc) func(*av.Frame) error {
	return func(f *av.Frame) error {
		m, ok := s.meta[f.Pts()]
		if ok {
			delete(s.meta, f.Pts())
		} else {
			m = s.lastMeta
		}
		if fn == nil {
			return nil
		}
		return fn(f, m)
	}
}

// Flush drains the decoder: every frame still buffered goes to fn. The
// next packet must be a keyframe.
func (s *Session) Flush(fn FrameFunc) error {
	defer func() { clear(s.meta); s.needKey = true }()
	if s.dec == nil {
		return nil
	}
	err := s.dec.Flush(s.label(fn))
	var de *av.DecodeError
	if errors.As(err, &de) {
		s.c.Corrupt.Add(1)
		return nil
	}
	return err
}

// codecFor returns the codec parameters to decode from keyframe p: the
// packet's own (an ingest puts the extradata on every keyframe, so GOPs
// cached before a codec change stay decodable), else the stored codec info,
// else the packet's name alone (Annex-B streams carry SPS/PPS in-band).
func (s *Session) codecFor(ctx context.Context, p media.Packet) (media.Codec, error) {
	if len(p.Extradata) > 0 && p.CodecName != "" {
		return media.Codec{Name: p.CodecName, Width: p.Width, Height: p.Height, PixFmt: p.PixFmt, Extradata: p.Extradata}, nil
	}
	var cd media.Codec
	ok := false
	if s.o.CodecInfo != nil {
		var err error
		if cd, ok, err = s.o.CodecInfo(ctx); err != nil {
			return media.Codec{}, err
		}
	}
	if !ok || (p.CodecName != "" && p.CodecName != cd.Name) {
		cd = media.Codec{Name: p.CodecName, Width: p.Width, Height: p.Height, PixFmt: p.PixFmt}
		if cd.Name == "" {
			cd.Name = "h264"
		}
	}
	return cd, nil
}

func sameCodec(a, b media.Codec) bool {
	return a.Name == b.Name && a.Width == b.Width && a.Height == b.Height && string(a.Extradata) == string(b.Extradata)
}

// restart prepares to decode from keyframe kf: the decoder is re-created
// when the codec parameters changed (its buffered frames drained to fn
// first), created when there is none, and kept otherwise (a keyframe in a
// continuous stream needs no reset).
func (s *Session) restart(ctx context.Context, kf media.Packet, fn FrameFunc) error {
	cd, err := s.codecFor(ctx, kf)
	if err != nil {
		return err
	}
	if s.dec != nil && sameCodec(cd, s.cd) {
		s.needKey = false
		return nil
	}
	if s.dec != nil {
		if !s.needKey {
			if err := s.Flush(fn); err != nil {
				return err
			}
		}
		s.c.Reinits.Add(1)
		s.log.Info("codec changed; re-creating decoder", "codec", cd.Name, "width", cd.Width, "height", cd.Height)
		_ = s.dec.Close()
		s.dec = nil
	}
	dec, err := av.NewDecoder(av.CodecParams{Name: cd.Name, Width: cd.Width, Height: cd.Height, PixFmt: cd.PixFmt, Extradata: cd.Extradata},
		av.DecoderOptions{Threads: s.o.Threads, HWDevice: s.o.HWDevice, Logger: s.log, OffThread: s.o.OffThread})
	if err != nil {
		return fmt.Errorf("camera %q: %w", s.o.Camera, err)
	}
	s.dec, s.cd, s.needKey = dec, cd, false
	clear(s.meta)
	return nil
}

// DecodeOne decodes keyframe kf on its own (the session's position is
// forgotten) and converts it.
func (s *Session) DecodeOne(ctx context.Context, kf media.Packet) (*media.ChImage, error) {
	s.Jump()
	var img *media.ChImage
	grab := func(f *av.Frame, _ media.Packet) error {
		if img != nil {
			return nil
		}
		var err error
		img, err = s.Convert(f, kf)
		return err
	}
	if err := s.Feed(ctx, kf, grab); err != nil {
		return nil, err
	}
	if err := s.Flush(grab); err != nil {
		return nil, err
	}
	s.hasFed = false
	if img == nil {
		return nil, fmt.Errorf("camera %q: keyframe %s did not decode (corrupt packet)", s.o.Camera, kf.ID)
	}
	return img, nil
}

// PresentationMS is a frame's time on the cache clock: its packet's
// millisecond plus the packet's reorder delay (pts − dts), so the frames of
// a B-frame stream get increasing times in display order. Without B-frames
// (or without timing) it is the packet's millisecond.
func PresentationMS(p media.Packet) uint64 {
	if p.TimeBase <= 0 || p.PTS == av.NoPTS || p.DTS == av.NoPTS || p.PTS <= p.DTS {
		return p.ID.MS
	}
	return p.ID.MS + uint64(float64(p.PTS-p.DTS)*p.TimeBase*1000+0.5)
}

// Convert is the session's Converter.Convert.
func (s *Session) Convert(f *av.Frame, p media.Packet) (*media.ChImage, error) {
	return s.conv.Convert(f, p)
}

// Convert turns f into an image with a pooled buffer, labelled with packet
// p (see the package comment for ID and Time).
func (cv *Converter) Convert(f *av.Frame, p media.Packet) (*media.ChImage, error) {
	o := cv.o
	bpp := o.Format.BytesPerPixel()
	if bpp == 0 {
		return nil, fmt.Errorf("chrysalis: unsupported pixel format %v", o.Format)
	}
	gw, gh := f.Width(), f.Height()
	if o.CheckSize != nil && cv.checked != [2]int{gw, gh} {
		if err := o.CheckSize(gw, gh); err != nil {
			return nil, fmt.Errorf("camera %q: %w", o.Camera, err)
		}
		cv.checked = [2]int{gw, gh}
	}
	if o.Width > 0 && o.Height > 0 {
		gw, gh = o.Width, o.Height
	}
	buf := o.Pool.Buffer(gw * gh * bpp)
	out, stride, w, h, err := cv.conv.Convert(f, o.Width, o.Height, o.Format, buf)
	if err != nil {
		o.Pool.Put(buf)
		return nil, fmt.Errorf("camera %q: %w", o.Camera, err)
	}
	cv.c.Converted.Add(1)
	pt := f.PictType()
	if pt == "" {
		pt = "?"
	}
	img := &media.ChImage{
		Camera: o.Camera, Time: time.UnixMilli(int64(PresentationMS(p))).UTC(), ID: p.ID, Width: w, Height: h, Stride: stride,
		Format: o.Format, Data: out, Keyframe: p.Keyframe, PictType: pt, PTS: f.Pts(), Packet: p,
	}
	o.Pool.Attach(img)
	return img, nil
}
