package mp4

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/asticode/go-astiav"

	"github.com/chryscloud/chrysalis-go/internal/av"
	"github.com/chryscloud/chrysalis-go/media"
)

// encoder turns packed images into H.264 packets with libx264: the
// module's swscale wrapper (internal/av) converts (and scales, if an image
// differs from the first one's size) to yuv420p in one pass from the
// image's memory, then the encoder runs. Its time base is tb.
type encoder struct {
	cc  *astiav.CodecContext
	sws av.Converter // packed -> yuv420p, the module's one scaler
	yuv *astiav.Frame
	pkt *astiav.Packet
	w   int
	h   int
}

func newEncoder(w, h int, o Options, globalHeader bool) (e *encoder, err error) {
	if w < 2 || h < 2 {
		return nil, fmt.Errorf("mp4: cannot encode a %dx%d image", w, h)
	}
	codec := astiav.FindEncoderByName("libx264")
	if codec == nil {
		return nil, errors.New("mp4: FFmpeg has no libx264 encoder")
	}
	e = &encoder{w: w, h: h}
	defer func() {
		if err != nil {
			e.close()
			e = nil
		}
	}()
	if e.cc = astiav.AllocCodecContext(codec); e.cc == nil {
		return nil, errors.New("mp4: allocating encoder failed")
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
			return nil, fmt.Errorf("mp4: %w", err)
		}
	}
	if err := e.cc.Open(codec, d); err != nil {
		return nil, fmt.Errorf("mp4: opening libx264 (%dx%d, preset %s): %w", w, h, o.Preset, err)
	}
	e.yuv, e.pkt = astiav.AllocFrame(), astiav.AllocPacket()
	if e.yuv == nil || e.pkt == nil {
		return nil, errors.New("mp4: allocating frames failed")
	}
	e.yuv.SetWidth(w)
	e.yuv.SetHeight(h)
	e.yuv.SetPixelFormat(astiav.PixelFormatYuv420P)
	if err := e.yuv.AllocBuffer(0); err != nil {
		return nil, fmt.Errorf("mp4: %w", err)
	}
	return e, nil
}

// encode converts img, sends it with pts (ticks) and hands every packet
// that comes out to emit.
func (e *encoder) encode(img *media.ChImage, pts int64, emit func(held) error) error {
	if img.Width <= 0 || img.Height <= 0 {
		return fmt.Errorf("mp4: bad image size %dx%d", img.Width, img.Height)
	}
	// The encoder may still reference the previous picture.
	if err := makeWritable(e.yuv); err != nil {
		return fmt.Errorf("mp4: %w", err)
	}
	// One pass from the image's own memory, scaled to the first image's
	// size when it differs.
	if err := e.sws.FromPacked(img.Data, img.Stride, img.Width, img.Height, img.Format, e.yuv); err != nil {
		return fmt.Errorf("mp4: converting to yuv420p: %w", err)
	}
	e.yuv.SetPts(pts)
	if err := e.cc.SendFrame(e.yuv); err != nil {
		return fmt.Errorf("mp4: encoding: %w", err)
	}
	return e.drain(emit)
}

// flush drains the encoder at the end of the stream.
func (e *encoder) flush(emit func(held) error) error {
	if err := e.cc.SendFrame(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
		return fmt.Errorf("mp4: flushing encoder: %w", err)
	}
	return e.drain(emit)
}

func (e *encoder) drain(emit func(held) error) error {
	for {
		if err := e.cc.ReceivePacket(e.pkt); err != nil {
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return nil
			}
			return fmt.Errorf("mp4: encoding: %w", err)
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
	_ = e.sws.Close()
	if e.yuv != nil {
		e.yuv.Free()
		e.yuv = nil
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
