package mp4

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/asticode/go-astiav"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/av"
	"github.com/chryscloud/chrysalis-go/internal/avmux"
	"github.com/chryscloud/chrysalis-go/media"
)

// Mode chooses how a video sink turns images into a file.
type Mode int

const (
	// Auto (the default) decides from the first image: Remux when it is
	// untouched (!Modified) and carries its encoded packet, Encode
	// otherwise. The choice holds for the whole file.
	Auto Mode = iota
	// Remux writes the images' original encoded packets without decoding or
	// re-encoding: bit-exact and nearly free. Images before the first
	// keyframe are skipped. Modified images are written from their original
	// packet (the drawing is lost; a warning is logged once), images
	// without a packet are skipped.
	Remux
	// Encode encodes the pixels with libx264 (yuv420p).
	Encode
)

func (m Mode) String() string {
	switch m {
	case Auto:
		return "auto"
	case Remux:
		return "remux"
	case Encode:
		return "encode"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Options configures the MP4 writers and sinks. The zero value
// remuxes untouched images and otherwise encodes at 25 fps with libx264
// preset veryfast, CRF 23, a keyframe every 2 s.
type Options struct {
	// Mode is Auto (default), Remux or Encode. Only the image sinks read
	// it; an Writer's mode is set by its first write.
	Mode Mode
	// FPS is the nominal frame rate when encoding (rate control and the
	// keyframe interval), and the duration given to the last frame when
	// there is no previous frame interval to copy. Frame timestamps, not
	// FPS, set each frame's presentation time. Default 25.
	FPS int
	// Preset is the libx264 preset. Default "veryfast".
	Preset string
	// CRF is libx264's constant rate factor (0..51, lower is better).
	// Default 23.
	CRF int
	// GOP is the keyframe interval in frames when encoding. Default 2*FPS.
	GOP int
	// FastStart moves the index (moov atom) to the front of the file when
	// it is closed (movflags +faststart), for progressive playback over
	// HTTP. It costs one extra pass over the file at Close.
	FastStart bool
	// FragmentedMP4 writes a fragmented MP4 (movflags
	// frag_keyframe+empty_moov+default_base_moof, and each fragment flushed
	// to the file as it is cut): the index is written up front and a new
	// fragment starts at every keyframe, so the temporary file is playable
	// up to its last complete fragment even if the process is killed
	// before Close. What a kill loses is the fragment being built: at most
	// one keyframe interval (GOP) plus the one packet the writer holds.
	// Not with FastStart. Default false (one moov at Close).
	FragmentedMP4 bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns o with its defaults filled in, or an error for a
// value out of range.
func (o Options) WithDefaults() (Options, error) {
	if o.FPS == 0 {
		o.FPS = 25
	}
	if o.Preset == "" {
		o.Preset = "veryfast"
	}
	if o.CRF == 0 {
		o.CRF = 23
	}
	if o.GOP == 0 {
		o.GOP = 2 * o.FPS
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case o.FPS < 0 || o.FPS > 1000:
		return o, fmt.Errorf("mp4: FPS %d out of 1..1000", o.FPS)
	case o.CRF < 0 || o.CRF > 51:
		return o, fmt.Errorf("mp4: CRF %d out of 0..51", o.CRF)
	case o.GOP < 0:
		return o, fmt.Errorf("mp4: negative GOP %d", o.GOP)
	case o.Mode < Auto || o.Mode > Encode:
		return o, fmt.Errorf("mp4: unknown %v", o.Mode)
	case o.FastStart && o.FragmentedMP4:
		return o, errors.New("mp4: FastStart and FragmentedMP4 exclude each other")
	}
	return o, nil
}

// Errors callers branch on.
var (
	// ErrNoFrames: Close found nothing written (no keyframe ever came in
	// remux mode, or no image at all); no file was created.
	ErrNoFrames = errors.New("mp4: no frames written")
	// ErrCodecChanged: a keyframe's codec parameters (extradata or size)
	// differ from the file's. The packet was not written; the writer stays
	// usable, and the caller may Close it and start a new file.
	ErrCodecChanged = errors.New("mp4: codec parameters changed")
	// ErrMixedInput: WritePacket and WriteImage were both used on one
	// writer.
	ErrMixedInput = errors.New("mp4: packets and images mixed in one file")
	// ErrClosed: the writer was closed.
	ErrClosed = errors.New("mp4: writer closed")
)

// Stats are an Writer's counters.
type Stats struct {
	// Mode is Remux or Encode once the first write decided it, else Auto.
	Mode Mode
	// Packets is the number of video packets (= frames) in the file.
	Packets int64
	// Skipped counts packets not written: those before the first keyframe,
	// and those after a gap in the packet numbering (a lost packet) up to
	// the next keyframe, which could not be decoded.
	Skipped int64
	// Gaps counts the gaps in the packet numbering that made the writer
	// skip to the next keyframe.
	Gaps int64
	// AudioPackets is the number of AAC frames in the audio track (see
	// AddAudio); AudioSkipped counts those left out because they lie
	// outside the video's span or overlap frames written, AudioBad the
	// entries WriteAudio refused (not ADTS, or another configuration).
	AudioPackets, AudioSkipped, AudioBad int64
}

// tb is the writer's internal time base (90 kHz): fine enough to keep
// original MPEG timestamps exact, coarse enough to never overflow.
var tb = astiav.NewRational(1, ticksPerSecond)

const (
	ticksPerSecond = 90000
	ticksPerMS     = ticksPerSecond / 1000
)

// held is a packet waiting for its successor, which gives its duration.
// Its data is read-only (cache data, or the encoder's own copy of its
// packet), so holding it needs no copy.
type held struct {
	data     []byte
	pts, dts int64 // ticks
	key      bool
}

// Writer writes one MP4 file, either by remuxing encoded packets
// (WritePacket) or by encoding images (WriteImage); the first call decides
// and the two cannot be mixed.
//
// The file is written under a temporary name in the target directory
// (".<name>.*.part") and renamed to its path by Close after the trailer, so
// a file at path is always complete and playable. Close must be called,
// also on error and cancellation (e.g. Ctrl-C), to finalize it.
//
// Timestamps: a packet's decode time is its cache time (ID.MS, else
// Timestamp) relative to the first packet written, except that the
// packets' own DTS steps are used while they agree with the cache clock to
// within 500 ms (exact encoder timing without arrival jitter); the
// presentation time adds the packet's own PTS-DTS reorder delay, and all
// times are shifted so the first frame is presented at 0 (with B-frames
// the first decode times are then negative, as in FFmpeg's own remux).
// Each frame lasts until the next one; the last one as long as the one
// before (or 1/FPS when there is only one). Encoded images are stamped by
// their Time relative to the first image.
//
// An Writer is not safe for concurrent use, except Stats.
type Writer struct {
	path, tmp string
	o         Options
	log       *slog.Logger
	hint      cache.Codec

	fc  *astiav.FormatContext
	pb  *astiav.IOContext
	st  *astiav.Stream
	pkt *astiav.Packet
	buf []byte

	mode       Mode
	headerDone bool
	extradata  []byte // remux: the codec parameters in the file
	width      int
	height     int

	clock      avmux.Clock // remux: packet times in ticks
	shifted    bool
	shift      int64 // remux: ticks subtracted from every timestamp
	firstMS    int64 // encode: the first image's time
	lastPTS    int64 // encode
	lastNumber int64
	gap        bool
	pend       held
	havePend   bool
	lastDur    int64

	enc *encoder

	aud      *audioTrack // AddAudio
	zeroMS   int64       // the cache time of the video's time 0 (before shift)
	videoEnd int64       // ticks: the end of the last video packet written

	modeStat                             atomic.Int32 // mode, for Stats from other goroutines
	packets                              atomic.Int64
	skipped, gaps                        atomic.Int64
	audioPackets, audioSkipped, audioBad atomic.Int64
	closed                               bool
	closeErr                             error
}

// NewWriter creates an MP4 writer for path. It opens the temporary
// output file right away, so an unwritable directory fails here. The
// writer's mode is set by its first WritePacket (remux) or WriteImage
// (encode) call.
func NewWriter(path string, o Options) (*Writer, error) {
	o, err := o.WithDefaults()
	if err != nil {
		return nil, err
	}
	w := &Writer{path: path, o: o, log: o.Logger, clock: avmux.Clock{Rate: ticksPerSecond}}
	// A unique temporary name, so two writers of one path cannot collide.
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.part")
	if err != nil {
		return nil, fmt.Errorf("mp4: %w", err)
	}
	w.tmp = f.Name()
	f.Close()
	if err := w.open(); err != nil {
		w.free()
		os.Remove(w.tmp)
		return nil, err
	}
	return w, nil
}

// Create creates an MP4 file at path for remuxing packets of the given
// codec, typically straight from the cache:
//
//	w, err := mp4.Create(path, codec, mp4.Options{})
//	...
//	err = w.WritePacket(p) // for each packet, in cache order
//	...
//	err = w.Close()
//
// codec comes from cache.Cache.Codec; its extradata and size are used when
// the first keyframe does not carry its own. A zero codec is allowed: the
// parameters are then taken from the first keyframe.
func Create(path string, codec cache.Codec, o Options) (*Writer, error) {
	if codec.Name != "" {
		if _, err := avmux.CodecID(codec.Name); err != nil {
			return nil, fmt.Errorf("mp4: %w", err)
		}
	}
	w, err := NewWriter(path, o)
	if err != nil {
		return nil, err
	}
	w.hint = codec
	w.hint.Extradata = bytes.Clone(codec.Extradata)
	return w, nil
}

func (w *Writer) open() error {
	fc, err := astiav.AllocOutputFormatContext(nil, "mp4", w.tmp)
	if err != nil {
		return fmt.Errorf("mp4: allocating mp4 muxer: %w", err)
	}
	if fc == nil {
		return errors.New("mp4: allocating mp4 muxer failed")
	}
	w.fc = fc // freed by free
	if w.pkt = astiav.AllocPacket(); w.pkt == nil {
		return errors.New("mp4: allocating packet failed")
	}
	pb, err := astiav.OpenIOContext(w.tmp, astiav.NewIOContextFlags(astiav.IOContextFlagWrite))
	if err != nil {
		return fmt.Errorf("mp4: creating %s: %w", w.tmp, err)
	}
	w.pb = pb // closed by free
	fc.SetPb(pb)
	return nil
}

// free releases the FFmpeg objects. Idempotent.
func (w *Writer) free() error {
	var err error
	w.enc.close()
	w.enc = nil
	if w.pb != nil {
		err = w.pb.Close()
		w.pb = nil
	}
	if w.fc != nil {
		w.fc.Free()
		w.fc = nil
	}
	if w.pkt != nil {
		w.pkt.Free()
		w.pkt = nil
	}
	return err
}

// Path is the final path of the file.
func (w *Writer) Path() string { return w.path }

// Stats returns the writer's counters; safe from any goroutine.
func (w *Writer) Stats() Stats {
	return Stats{Mode: Mode(w.modeStat.Load()), Packets: w.packets.Load(), Skipped: w.skipped.Load(), Gaps: w.gaps.Load(),
		AudioPackets: w.audioPackets.Load(), AudioSkipped: w.audioSkipped.Load(), AudioBad: w.audioBad.Load()}
}

func (w *Writer) setMode(m Mode) error {
	if w.mode == m {
		return nil
	}
	if w.mode != Auto {
		return ErrMixedInput
	}
	w.mode = m
	w.modeStat.Store(int32(m))
	return nil
}

// WritePacket remuxes one encoded packet. Packets must come in cache
// (decode) order. Packets before the first keyframe are skipped, as are,
// after a gap in their Number (when the ingest numbered them), those up to
// the next keyframe. p.Data is copied; p is not retained.
//
// A keyframe whose codec parameters differ from the file's returns an
// error wrapping ErrCodecChanged and is not written.
func (w *Writer) WritePacket(p cache.Packet) error {
	if w.closed {
		return ErrClosed
	}
	if err := w.setMode(Remux); err != nil {
		return err
	}
	if len(p.Data) == 0 {
		return nil
	}
	// Detect lost packets through the ingest's numbering.
	if media.NumberGap(w.lastNumber, p.Number) && !p.Keyframe && w.headerDone {
		if !w.gap {
			w.gaps.Add(1)
			w.log.Warn("mp4: gap in packet numbers; skipping to the next keyframe", "file", w.path,
				"after", w.lastNumber, "got", p.Number)
		}
		w.gap = true
	}
	if p.Number > 0 {
		w.lastNumber = p.Number
	}
	if p.Keyframe {
		w.gap = false
	}
	if !w.headerDone {
		if !p.Keyframe {
			w.skipped.Add(1)
			return nil
		}
		if err := w.remuxHeader(p); err != nil {
			return err
		}
	} else if p.Keyframe {
		if err := w.checkCodec(p); err != nil {
			return err
		}
	}
	if w.gap {
		w.skipped.Add(1)
		return nil
	}
	dts, pts := w.remuxTimes(p)
	return w.queue(held{data: p.Data, pts: pts, dts: dts, key: p.Keyframe})
}

// remuxTimes computes a packet's decode and presentation time in ticks.
func (w *Writer) remuxTimes(p cache.Packet) (dts, pts int64) {
	dts, pts = w.clock.Next(p)
	if !w.shifted {
		// Start presentation at 0: with B-frames the first decode time
		// becomes negative, as FFmpeg's own remux does.
		w.shifted, w.shift = true, pts-dts
		w.zeroMS = avmux.PacketMS(p)
	}
	return dts - w.shift, pts - w.shift
}

// remuxHeader creates the stream from the first keyframe and writes the
// header. What the keyframe does not carry comes from the codec Create
// was given (whichever codec that names); the pixel format only from the
// keyframe.
func (w *Writer) remuxHeader(p cache.Packet) error {
	cd := avmux.PacketCodec(p)
	if cd.Name == "" {
		cd.Name = w.hint.Name
	}
	if cd.Name == "" {
		cd.Name = avmux.DefaultCodec
	}
	id, err := avmux.CodecID(cd.Name)
	if err != nil {
		return fmt.Errorf("mp4: %w", err)
	}
	if len(cd.Extradata) == 0 {
		cd.Extradata = w.hint.Extradata
	}
	if cd.Width <= 0 || cd.Height <= 0 {
		cd.Width, cd.Height = w.hint.Width, w.hint.Height
	}
	if cd.Width <= 0 || cd.Height <= 0 {
		// The muxer needs the size: decode the keyframe once to learn it.
		if cd.Width, cd.Height, err = frameSize(cd.Name, cd.Extradata, p); err != nil {
			return err
		}
	}
	st := w.fc.NewStream(nil)
	if st == nil {
		return errors.New("mp4: creating mp4 stream failed")
	}
	cp := st.CodecParameters()
	if err := avmux.SetCodecParameters(cp, id, cd); err != nil {
		return fmt.Errorf("mp4: %w", err)
	}
	if id == astiav.CodecIDHevc && len(cd.Extradata) > 0 && cd.Extradata[0] == 1 {
		// hvcC with parameter sets out of band: tag hvc1, which Apple
		// players require (the muxer's default hev1 also plays elsewhere).
		cp.SetCodecTag(astiav.CodecTag('h' | 'v'<<8 | 'c'<<16 | '1'<<24))
	}
	st.SetTimeBase(tb)
	w.st = st
	w.extradata, w.width, w.height = bytes.Clone(cd.Extradata), cd.Width, cd.Height
	return w.writeHeader()
}

// checkCodec reports ErrCodecChanged when keyframe p does not fit the file.
func (w *Writer) checkCodec(p cache.Packet) error {
	switch {
	case len(p.Extradata) > 0 && len(w.extradata) > 0 && !bytes.Equal(p.Extradata, w.extradata):
		return fmt.Errorf("%w: new extradata at %s", ErrCodecChanged, p.ID)
	case p.Width > 0 && p.Height > 0 && (p.Width != w.width || p.Height != w.height):
		return fmt.Errorf("%w: size %dx%d -> %dx%d at %s", ErrCodecChanged, w.width, w.height, p.Width, p.Height, p.ID)
	}
	return nil
}

func (w *Writer) writeHeader() error {
	if err := w.addAudioStream(); err != nil {
		return err
	}
	var opts [][2]string
	switch {
	case w.o.FastStart:
		opts = append(opts, [2]string{"movflags", "+faststart"})
	case w.o.FragmentedMP4:
		// flush_packets: a cut fragment goes to the file at once, not when
		// the I/O buffer fills, so a kill loses only the open fragment.
		opts = append(opts, [2]string{"movflags", "+frag_keyframe+empty_moov+default_base_moof"},
			[2]string{"flush_packets", "1"})
	}
	var d *astiav.Dictionary
	if len(opts) > 0 {
		d = astiav.NewDictionary()
		defer d.Free()
		for _, kv := range opts {
			if err := d.Set(kv[0], kv[1], astiav.NewDictionaryFlags()); err != nil {
				return fmt.Errorf("mp4: %w", err)
			}
		}
	}
	if err := w.fc.WriteHeader(d); err != nil {
		return fmt.Errorf("mp4: writing mp4 header: %w", err)
	}
	w.headerDone = true
	return nil
}

// queue holds p until the next packet gives its duration, and writes the
// packet held before.
func (w *Writer) queue(p held) error {
	if w.havePend {
		dur := p.dts - w.pend.dts
		if err := w.writeHeld(w.pend, dur); err != nil {
			return err
		}
		w.lastDur = dur
	}
	w.pend = p // p.data is read-only cache data or the encoder's own copy
	w.havePend = true
	return nil
}

// flushHeld writes the last held packet, as long as the one before it.
func (w *Writer) flushHeld() error {
	if !w.havePend {
		return nil
	}
	w.havePend = false
	dur := w.lastDur
	if dur <= 0 {
		dur = int64(ticksPerSecond / w.o.FPS)
	}
	return w.writeHeld(w.pend, dur)
}

func (w *Writer) writeHeld(h held, dur int64) error {
	p := avmux.Packet{Data: h.data, PTS: h.pts, DTS: h.dts, Dur: dur, Key: h.key}
	if err := avmux.WritePacket(w.fc, w.st, w.pkt, &w.buf, tb, p); err != nil {
		return fmt.Errorf("mp4: writing packet: %w", err)
	}
	w.packets.Add(1)
	w.videoEnd = h.dts + dur
	return w.flushAudio(w.videoEnd, false)
}

// WriteImage encodes one image (BGR24, RGB24 or GRAY8) with libx264. The
// first image sets the video size (rounded down to even numbers); later
// images of another size are scaled to it. Images must come in time order;
// each is stamped by its Time. img is only read during the call; the
// caller keeps its reference.
func (w *Writer) WriteImage(img *media.ChImage) error {
	if w.closed {
		return ErrClosed
	}
	if err := w.setMode(Encode); err != nil {
		return err
	}
	ms := img.Time.UnixMilli()
	if w.enc == nil {
		enc, err := newEncoder(img.Width&^1, img.Height&^1, w.o,
			w.fc.OutputFormat().Flags().Has(astiav.IOFormatFlagGlobalheader))
		if err != nil {
			return err
		}
		w.enc = enc
		st := w.fc.NewStream(nil)
		if st == nil {
			return errors.New("mp4: creating mp4 stream failed")
		}
		if err := st.CodecParameters().FromCodecContext(enc.cc); err != nil {
			return fmt.Errorf("mp4: %w", err)
		}
		st.SetTimeBase(tb)
		st.SetAvgFrameRate(astiav.NewRational(w.o.FPS, 1))
		w.st = st
		if err := w.writeHeader(); err != nil {
			return err
		}
		w.firstMS, w.lastPTS, w.zeroMS = ms, -1, ms
	}
	pts := max((ms-w.firstMS)*ticksPerMS, w.lastPTS+1)
	w.lastPTS = pts
	return w.enc.encode(img, pts, w.queue)
}

// Close finishes the file: it drains the encoder, writes the last packet
// and the trailer, and renames the file into place. When nothing was
// written it removes the temporary file and returns ErrNoFrames. Close is
// idempotent: later calls return the first call's result.
func (w *Writer) Close() error {
	if w.closed {
		return w.closeErr
	}
	w.closed = true
	var errs []error
	if w.enc != nil && w.headerDone {
		errs = append(errs, w.enc.flush(w.queue))
	}
	if w.headerDone {
		errs = append(errs, w.flushHeld())
		errs = append(errs, w.flushAudio(w.videoEnd, true))
		if err := w.fc.WriteTrailer(); err != nil {
			errs = append(errs, fmt.Errorf("mp4: writing mp4 trailer: %w", err))
		}
	}
	if err := w.free(); err != nil {
		errs = append(errs, fmt.Errorf("mp4: closing %s: %w", w.tmp, err))
	}
	err := errors.Join(errs...)
	switch {
	case !w.headerDone || w.packets.Load() == 0:
		os.Remove(w.tmp)
		if err == nil {
			err = ErrNoFrames
		}
	case err == nil:
		// os.CreateTemp made the file private (0600); the finished video
		// is an ordinary file, readable like the image sink's.
		if cerr := os.Chmod(w.tmp, 0o644); cerr != nil {
			err = fmt.Errorf("mp4: %w", cerr)
		} else if rerr := os.Rename(w.tmp, w.path); rerr != nil {
			err = fmt.Errorf("mp4: %w", rerr)
		}
	default:
		// Keep what was written under its temporary name for inspection.
		w.log.Error("mp4: mp4 not finalized", "file", w.tmp, "err", err)
	}
	w.closeErr = err
	return err
}

// frameSize decodes keyframe p to learn the picture size.
func frameSize(name string, extra []byte, p cache.Packet) (int, int, error) {
	d, err := av.NewDecoder(av.CodecParams{Name: name, Extradata: extra}, av.DecoderOptions{Threads: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, 0, fmt.Errorf("mp4: %w", err)
	}
	defer d.Close()
	var wd, ht int
	got := func(f *av.Frame) error {
		if wd == 0 {
			wd, ht = f.Width(), f.Height()
		}
		return nil
	}
	if err := d.Decode(p.Data, p.PTS, p.DTS, true, got); err != nil {
		return 0, 0, fmt.Errorf("mp4: probing the video size: %w", err)
	}
	if err := d.Flush(got); err != nil {
		return 0, 0, fmt.Errorf("mp4: probing the video size: %w", err)
	}
	if wd <= 0 || ht <= 0 {
		return 0, 0, errors.New("mp4: video size unknown and the keyframe did not decode")
	}
	return wd, ht, nil
}
