package sink

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/asticode/go-astiav"

	chrysalis "github.com/chryscloud/chrysalis-go"
)

// encoder turns packed images into H.264 packets with libx264: swscale
// converts (and scales, if an image differs from the first one's size) to
// yuv420p, then the encoder runs. Its time base is tb.
type encoder struct {
	cc  *astiav.CodecContext
	sws *astiav.SoftwareScaleContext
	key [3]int // source width, height, pixel format of sws
	src *astiav.Frame
	yuv *astiav.Frame
	pkt *astiav.Packet
	w   int
	h   int
}

func newEncoder(w, h int, o VideoOptions, globalHeader bool) (e *encoder, err error) {
	if w < 2 || h < 2 {
		return nil, fmt.Errorf("sink: cannot encode a %dx%d image", w, h)
	}
	codec := astiav.FindEncoderByName("libx264")
	if codec == nil {
		return nil, errors.New("sink: FFmpeg has no libx264 encoder")
	}
	e = &encoder{w: w, h: h}
	defer func() {
		if err != nil {
			e.close()
			e = nil
		}
	}()
	if e.cc = astiav.AllocCodecContext(codec); e.cc == nil {
		return nil, errors.New("sink: allocating encoder failed")
	}
	e.cc.SetWidth(w)
	e.cc.SetHeight(h)
	e.cc.SetPixelFormat(astiav.PixelFormatYuv420P)
	e.cc.SetTimeBase(tb)
	e.cc.SetFramerate(astiav.NewRational(o.FPS, 1))
	e.cc.SetGopSize(o.GOP)
	if globalHeader {
		e.cc.SetFlags(e.cc.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	}
	d := astiav.NewDictionary()
	defer d.Free()
	// x264 logs its banner and statistics at info level for every file;
	// keep its warnings and errors only.
	for k, v := range map[string]string{"preset": o.Preset, "crf": strconv.Itoa(o.CRF), "x264-params": "log=1"} {
		if err := d.Set(k, v, astiav.NewDictionaryFlags()); err != nil {
			return nil, fmt.Errorf("sink: %w", err)
		}
	}
	if err := e.cc.Open(codec, d); err != nil {
		return nil, fmt.Errorf("sink: opening libx264 (%dx%d, preset %s): %w", w, h, o.Preset, err)
	}
	e.src, e.yuv, e.pkt = astiav.AllocFrame(), astiav.AllocFrame(), astiav.AllocPacket()
	if e.src == nil || e.yuv == nil || e.pkt == nil {
		return nil, errors.New("sink: allocating frames failed")
	}
	e.yuv.SetWidth(w)
	e.yuv.SetHeight(h)
	e.yuv.SetPixelFormat(astiav.PixelFormatYuv420P)
	if err := e.yuv.AllocBuffer(0); err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	return e, nil
}

func avPixFmt(f chrysalis.PixelFormat) astiav.PixelFormat {
	switch f {
	case chrysalis.BGR24:
		return astiav.PixelFormatBgr24
	case chrysalis.RGB24:
		return astiav.PixelFormatRgb24
	case chrysalis.GRAY8:
		return astiav.PixelFormatGray8
	}
	return astiav.PixelFormatNone
}

// setup (re)creates the scaler and source frame for img's geometry.
func (e *encoder) setup(img *chrysalis.ChImage) error {
	pf := avPixFmt(img.Format)
	if pf == astiav.PixelFormatNone {
		return fmt.Errorf("sink: cannot encode pixel format %v", img.Format)
	}
	k := [3]int{img.Width, img.Height, int(pf)}
	if e.sws != nil && k == e.key {
		return nil
	}
	if e.sws != nil {
		e.sws.Free()
		e.sws = nil
	}
	e.src.Unref()
	e.src.SetWidth(img.Width)
	e.src.SetHeight(img.Height)
	e.src.SetPixelFormat(pf)
	if err := e.src.AllocBuffer(0); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	sws, err := astiav.CreateSoftwareScaleContext(img.Width, img.Height, pf, e.w, e.h, astiav.PixelFormatYuv420P,
		astiav.NewSoftwareScaleContextFlags(astiav.SoftwareScaleContextFlagBilinear))
	if err != nil {
		return fmt.Errorf("sink: creating scaler: %w", err)
	}
	e.sws, e.key = sws, k
	return nil
}

// encode converts img, sends it with pts (ticks) and hands every packet
// that comes out to emit.
func (e *encoder) encode(img *chrysalis.ChImage, pts int64, emit func(held) error) error {
	if img.Width <= 0 || img.Height <= 0 {
		return fmt.Errorf("sink: bad image size %dx%d", img.Width, img.Height)
	}
	if err := e.setup(img); err != nil {
		return err
	}
	if err := fillPacked(e.src, img.Data, img.Stride, img.Width*img.Format.BytesPerPixel(), img.Height); err != nil {
		return err
	}
	// The encoder may still reference the previous picture.
	if err := makeWritable(e.yuv); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	if err := e.sws.ScaleFrame(e.src, e.yuv); err != nil {
		return fmt.Errorf("sink: converting to yuv420p: %w", err)
	}
	e.yuv.SetPts(pts)
	if err := e.cc.SendFrame(e.yuv); err != nil {
		return fmt.Errorf("sink: encoding: %w", err)
	}
	return e.drain(emit)
}

// flush drains the encoder at the end of the stream.
func (e *encoder) flush(emit func(held) error) error {
	if err := e.cc.SendFrame(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
		return fmt.Errorf("sink: flushing encoder: %w", err)
	}
	return e.drain(emit)
}

func (e *encoder) drain(emit func(held) error) error {
	for {
		if err := e.cc.ReceivePacket(e.pkt); err != nil {
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return nil
			}
			return fmt.Errorf("sink: encoding: %w", err)
		}
		h := held{data: e.pkt.Data(), pts: e.pkt.Pts(), dts: e.pkt.Dts(), key: e.pkt.Flags().Has(astiav.PacketFlagKey)}
		e.pkt.Unref()
		if err := emit(h); err != nil {
			return err
		}
	}
}

// close frees everything; nil-safe and idempotent.
func (e *encoder) close() {
	if e == nil {
		return
	}
	if e.sws != nil {
		e.sws.Free()
		e.sws = nil
	}
	for _, f := range []**astiav.Frame{&e.src, &e.yuv} {
		if *f != nil {
			(*f).Free()
			*f = nil
		}
	}
	if e.pkt != nil {
		e.pkt.Free()
		e.pkt = nil
	}
	if e.cc != nil {
		e.cc.Free()
		e.cc = nil
	}
}
