package av

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/asticode/go-astiav"
)

// CodecParams describes the encoded video stream fed to a Decoder.
type CodecParams struct {
	// Name is the FFmpeg decoder name: "h264" or "hevc" ("h265" and "avc"
	// are accepted as aliases). Required.
	Name string
	// Width and Height are hints only; the real size is taken from the
	// bitstream and may change mid-stream. Zero means unknown.
	Width, Height int
	// PixFmt is an optional FFmpeg pixel format name hint ("yuv420p").
	// Unknown names are ignored.
	PixFmt string
	// Extradata is the out-of-band codec configuration. Set it to the
	// avcC/hvcC record for length-prefixed (AVCC) packets as produced by
	// MP4/FLV demuxers. Leave it empty for Annex-B packets carrying in-band
	// SPS/PPS (MPEG-TS, RTSP); Annex-B SPS/PPS are accepted too. The slice is
	// copied and not retained.
	Extradata []byte
}

// DecoderOptions tunes a Decoder. The zero value decodes in software with
// automatic threading and logs to slog.Default().
type DecoderOptions struct {
	// Threads is the number of decoding threads; 0 (default) lets FFmpeg
	// pick one per CPU. Frame and slice threading are both enabled, so with
	// more than one thread frames come out a few packets late (use 1 for
	// the lowest latency).
	Threads int
	// HWDevice selects hardware decoding: "" (default, software), "cuda",
	// "vaapi" or any other FFmpeg hwdevice type, optionally followed by
	// ":device" (e.g. "vaapi:/dev/dri/renderD128"). If the device cannot be
	// used, one Warn line is logged and the decoder falls back to software.
	// Decoded frames are always handed out in system memory.
	HWDevice string
	// Logger receives the decoder's own diagnostics (not FFmpeg's log).
	// Nil means slog.Default().
	Logger *slog.Logger
	// OffThread runs the decoding of each packet on a C thread owned by the
	// Decoder, while the calling goroutine parks (no cgo call held for the
	// packet's decode time). For a live stream decoded packet by packet as
	// it arrives this saves the Go runtime's sysmon tens of wakeups per
	// packet. It is ignored with HWDevice (a hardware decoder calls back
	// into Go) and when astiav's layout hides the C pointers it needs.
	OffThread bool
}

// DecodeError is returned by Decoder.Decode and Decoder.Flush when FFmpeg
// rejects a packet or fails to decode a frame (corrupt or truncated data,
// missing parameter sets...). The Decoder stays usable: keep feeding packets,
// ideally from the next keyframe. Err is the underlying astiav.Error and can
// be matched with errors.Is (e.g. astiav.ErrInvaliddata).
type DecodeError struct {
	// Op is the failing step: "send", "receive" or "transfer".
	Op string
	// Pts is the pts given to the call that surfaced the error. With frame
	// threading the faulty packet may be an earlier one.
	Pts int64
	// Err is the astiav error.
	Err error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("av: decode %s failed (pts %d): %v", e.Op, e.Pts, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// ErrConcealed is the DecodeError.Err of a frame the decoder found errors
// in and repaired by guessing (corrupt or missing data): such a frame is
// never delivered.
var ErrConcealed = errors.New("av: corrupt frame (errors concealed by the decoder)")

// ErrClosed is returned when using a closed (or nil) Decoder.
var ErrClosed = errors.New("av: decoder is closed")

// Decoder decodes H.264/HEVC packets into frames. Create it with NewDecoder
// and release it with Close. It is not safe for concurrent use.
type Decoder struct {
	params CodecParams
	opts   DecoderOptions
	log    *slog.Logger

	codec    *astiav.Codec
	cc       *astiav.CodecContext
	hwPixFmt astiav.PixelFormat // PixelFormatNone when decoding in software
	hwWarned bool
	broken   error // set when the codec could not be re-opened

	pkt     *astiav.Packet
	frame   *astiav.Frame // as received from the codec
	swFrame *astiav.Frame // hardware frames are downloaded here
	out     Frame         // handed to callbacks
	pktBuf  []byte        // packet payload followed by zeroed padding
	snd     *sender       // OffThread's decode thread, or nil
}

// FindDecoder returns FFmpeg's decoder for a codec name as the cache
// carries it: any case, with "h265" and "avc" as aliases of "hevc" and
// "h264". It returns nil when FFmpeg has no such decoder.
func FindDecoder(name string) *astiav.Codec {
	n := strings.ToLower(name)
	switch n {
	case "h265":
		n = "hevc"
	case "avc":
		n = "h264"
	}
	return astiav.FindDecoderByName(n)
}

// NewDecoder opens a decoder for p. The returned Decoder owns FFmpeg
// resources and must be closed with Close.
func NewDecoder(p CodecParams, o DecoderOptions) (*Decoder, error) {
	if o.Threads < 0 {
		return nil, fmt.Errorf("av: invalid thread count %d", o.Threads)
	}
	codec := FindDecoder(p.Name)
	if codec == nil {
		return nil, fmt.Errorf("av: no decoder for codec %q", p.Name)
	}
	p.Extradata = append([]byte(nil), p.Extradata...)
	d := &Decoder{
		params:   p,
		opts:     o,
		log:      o.Logger,
		codec:    codec,
		hwPixFmt: astiav.PixelFormatNone,
		pkt:      astiav.AllocPacket(),
		frame:    astiav.AllocFrame(),
		swFrame:  astiav.AllocFrame(),
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.pkt == nil || d.frame == nil || d.swFrame == nil {
		d.Close()
		return nil, errors.New("av: allocating packet/frame failed")
	}
	if err := d.openCodec(); err != nil {
		d.Close()
		return nil, err
	}
	if o.OffThread && o.HWDevice == "" && canReachCodecContext && canReachPacket {
		snd, err := newSender()
		if err != nil {
			d.Close()
			return nil, err
		}
		d.snd = snd // freed by Close
	}
	return d, nil
}

// sendPacket is avcodec_send_packet(d.cc, d.pkt), on the decode thread
// when there is one.
func (d *Decoder) sendPacket() error {
	if d.snd == nil {
		return d.cc.SendPacket(d.pkt)
	}
	return astiavError(d.snd.send(codecContextC(d.cc), packetC(d.pkt)))
}

// openCodec allocates, configures and opens d.cc.
func (d *Decoder) openCodec() error {
	cc := astiav.AllocCodecContext(d.codec)
	if cc == nil {
		return errors.New("av: allocating codec context failed")
	}
	d.cc = cc // freed by closeCodec, also on error
	if err := d.configure(cc); err != nil {
		d.closeCodec()
		return err
	}
	if err := cc.Open(d.codec, nil); err != nil {
		d.closeCodec()
		return fmt.Errorf("av: opening %s decoder failed: %w", d.codec.Name(), err)
	}
	return nil
}

func (d *Decoder) configure(cc *astiav.CodecContext) error {
	p := d.params
	if p.Width > 0 && p.Height > 0 {
		cc.SetWidth(p.Width)
		cc.SetHeight(p.Height)
	}
	if p.PixFmt != "" {
		if pf := astiav.FindPixelFormatByName(p.PixFmt); pf != astiav.PixelFormatNone {
			cc.SetPixelFormat(pf)
		}
	}
	if len(p.Extradata) > 0 {
		if err := cc.SetExtraData(p.Extradata); err != nil {
			return fmt.Errorf("av: setting extradata failed: %w", err)
		}
	}
	cc.SetThreadCount(d.opts.Threads)
	cc.SetThreadType(astiav.ThreadTypeFrame | astiav.ThreadTypeSlice)
	if d.opts.HWDevice != "" {
		d.hwPixFmt = d.setupHW(cc)
	}
	return nil
}

// setupHW attaches a hardware device to cc and returns the hardware pixel
// format to expect, or PixelFormatNone (after one Warn) to decode in
// software.
func (d *Decoder) setupHW(cc *astiav.CodecContext) astiav.PixelFormat {
	typeName, device, _ := strings.Cut(d.opts.HWDevice, ":")
	fail := func(reason string, err error) astiav.PixelFormat {
		if !d.hwWarned {
			d.hwWarned = true
			attrs := []any{"device", d.opts.HWDevice, "codec", d.codec.Name(), "reason", reason}
			if err != nil {
				attrs = append(attrs, "err", err)
			}
			d.log.Warn("av: hardware decoding unavailable, falling back to software", attrs...)
		}
		return astiav.PixelFormatNone
	}

	typ := astiav.FindHardwareDeviceTypeByName(typeName)
	if typ == astiav.HardwareDeviceTypeNone {
		return fail("unknown hardware device type", nil)
	}
	hwPixFmt := astiav.PixelFormatNone
	for _, c := range d.codec.HardwareConfigs() {
		if c.MethodFlags().Has(astiav.CodecHardwareConfigMethodFlagHwDeviceCtx) && c.HardwareDeviceType() == typ {
			hwPixFmt = c.PixelFormat()
			break
		}
	}
	if hwPixFmt == astiav.PixelFormatNone {
		return fail("decoder does not support this device type", nil)
	}
	hdc, err := astiav.CreateHardwareDeviceContext(typ, device, nil)
	if err != nil {
		return fail("creating device failed", err)
	}
	// cc takes ownership of hdc and releases it in Free.
	cc.SetHardwareDeviceContext(hdc)
	cc.SetPixelFormatCallback(func(pfs []astiav.PixelFormat) astiav.PixelFormat {
		for _, pf := range pfs {
			if pf == hwPixFmt {
				return pf
			}
		}
		// The hwaccel does not handle this stream (profile, size...):
		// FFmpeg lists its software format last.
		return pfs[len(pfs)-1]
	})
	return hwPixFmt
}

func (d *Decoder) closeCodec() {
	if d.cc == nil {
		return
	}
	if d.hwPixFmt != astiav.PixelFormatNone {
		// Unregister the callback from astiav's global table.
		d.cc.SetPixelFormatCallback(nil)
		d.hwPixFmt = astiav.PixelFormatNone
	}
	d.cc.Free()
	d.cc = nil
}

func (d *Decoder) usable() error {
	switch {
	case d == nil || d.pkt == nil:
		return ErrClosed
	case d.broken != nil:
		return d.broken
	}
	return nil
}

// Decode sends one encoded packet (a complete access unit) to the decoder
// and calls fn for every frame that becomes available, in display order.
// pts/dts are in the stream time base (NoPTS if unknown) and are carried to
// the frames. data is copied and not retained; empty data is ignored.
//
// f is owned by the Decoder and is only valid during the call: fn must not
// retain it (copy what it needs, e.g. with Converter.Convert). fn may be nil
// to discard frames. If fn returns an error, Decode stops and returns it;
// frames still buffered are delivered by the next call.
//
// A packet the decoder rejects, or a frame it decoded with errors it
// concealed (ErrConcealed, not delivered), yields a *DecodeError; the
// Decoder stays usable, and decoding recovers at the next keyframe.
func (d *Decoder) Decode(data []byte, pts, dts int64, keyframe bool, fn func(f *Frame) error) error {
	if err := d.usable(); err != nil {
		return err
	}
	if len(data) == 0 {
		return nil // an empty packet would put the decoder in draining mode
	}
	if err := d.fillPacket(data, pts, dts, keyframe); err != nil {
		return err
	}
	defer d.pkt.Unref()

	for {
		err := d.sendPacket()
		if err == nil {
			break
		}
		if !errors.Is(err, astiav.ErrEagain) {
			return &DecodeError{Op: "send", Pts: pts, Err: err}
		}
		// The output queue is full: drain it, then send again.
		n, rerr := d.receive(pts, fn)
		if rerr != nil {
			return rerr
		}
		if n == 0 {
			return &DecodeError{Op: "send", Pts: pts, Err: err}
		}
	}
	_, err := d.receive(pts, fn)
	return err
}

// fillPacket loads data into d.pkt with the zeroed padding FFmpeg requires.
func (d *Decoder) fillPacket(data []byte, pts, dts int64, keyframe bool) error {
	if err := FillPacket(d.pkt, &d.pktBuf, data); err != nil {
		return fmt.Errorf("av: allocating packet failed: %w", err)
	}
	d.pkt.SetPts(pts)
	d.pkt.SetDts(dts)
	var flags astiav.PacketFlags
	if keyframe {
		flags = flags.Add(astiav.PacketFlagKey)
	}
	d.pkt.SetFlags(flags)
	return nil
}

// receive hands every available frame to fn until the decoder needs more
// input or is fully drained, and reports how many frames it got.
func (d *Decoder) receive(pts int64, fn func(*Frame) error) (int, error) {
	for n := 0; ; n++ {
		if err := d.cc.ReceiveFrame(d.frame); err != nil {
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return n, nil
			}
			return n, &DecodeError{Op: "receive", Pts: pts, Err: err}
		}
		if err := d.deliver(pts, fn); err != nil {
			return n + 1, err
		}
	}
}

// deliver passes d.frame (downloaded to system memory if needed) to fn and
// releases it afterwards.
func (d *Decoder) deliver(pts int64, fn func(*Frame) error) error {
	defer d.frame.Unref()
	src := d.frame
	if d.hwPixFmt != astiav.PixelFormatNone && src.PixelFormat() == d.hwPixFmt {
		defer d.swFrame.Unref()
		if err := src.TransferHardwareData(d.swFrame); err != nil {
			return &DecodeError{Op: "transfer", Pts: pts, Err: err}
		}
		if err := copyFrameProps(d.swFrame, src); err != nil {
			return &DecodeError{Op: "transfer", Pts: pts, Err: err}
		}
		src = d.swFrame
	}
	if concealed(src) {
		// FFmpeg hands out a frame it repaired by guessing (error
		// concealment); never deliver one: the caller skips to the next
		// keyframe, as for a packet the decoder rejected.
		return &DecodeError{Op: "receive", Pts: pts, Err: ErrConcealed}
	}
	if fn == nil {
		return nil
	}
	d.out.f = src
	defer func() { d.out.f = nil }()
	return fn(&d.out)
}

// Flush drains the decoder at the end of a stream: it calls fn for every
// frame still buffered, then resets the decoder so that it can decode a new
// stream starting with a keyframe. If fn returns an error the remaining
// frames are dropped, the decoder is reset anyway and the error returned.
func (d *Decoder) Flush(fn func(f *Frame) error) error {
	if err := d.usable(); err != nil {
		return err
	}
	var err error
	if serr := d.cc.SendPacket(nil); serr == nil {
		_, err = d.receive(NoPTS, fn)
	} else if !errors.Is(serr, astiav.ErrEof) { // ErrEof: already draining
		err = &DecodeError{Op: "send", Pts: NoPTS, Err: serr}
	}
	if ferr := d.flushBuffers(); err == nil {
		err = ferr
	}
	return err
}

// Reset drops all buffered packets, frames and reference pictures, e.g.
// before seeking. The next packet should be a keyframe. Parameter sets
// received in-band are kept.
func (d *Decoder) Reset() {
	if d.usable() != nil {
		return
	}
	if err := d.flushBuffers(); err != nil {
		d.log.Error("av: resetting decoder failed", "codec", d.codec.Name(), "err", err)
	}
}

// flushBuffers runs avcodec_flush_buffers, or re-opens the codec context if
// astiav's layout does not let us reach it.
func (d *Decoder) flushBuffers() error {
	d.frame.Unref()
	d.swFrame.Unref()
	if flushCodecBuffers(d.cc) {
		return nil
	}
	d.closeCodec()
	if err := d.openCodec(); err != nil {
		d.broken = fmt.Errorf("av: decoder unusable, re-opening failed: %w", err)
		return d.broken
	}
	return nil
}

// Close releases all FFmpeg resources. It is idempotent and safe on a nil
// Decoder; a closed Decoder returns ErrClosed.
func (d *Decoder) Close() error {
	if d == nil {
		return nil
	}
	d.snd.free()
	d.snd = nil
	d.closeCodec()
	if d.pkt != nil {
		d.pkt.Free()
		d.pkt = nil
	}
	if d.frame != nil {
		d.frame.Free()
		d.frame = nil
	}
	if d.swFrame != nil {
		d.swFrame.Free()
		d.swFrame = nil
	}
	d.pktBuf = nil
	return nil
}
