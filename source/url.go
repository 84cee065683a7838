package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync/atomic"
	"time"

	"github.com/asticode/go-astiav"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/av"
	"github.com/chryscloud/chrysalis-go/internal/avin"
	"github.com/chryscloud/chrysalis-go/internal/decode"
	"github.com/chryscloud/chrysalis-go/media"
)

// DefaultURLCamera is the ChImage.Camera of a URLSource without a name.
const DefaultURLCamera = "url"

// DefaultURLReadTimeout bounds a blocking network read of a URLSource.
const DefaultURLReadTimeout = 10 * time.Second

// ErrNoVideo: the input has no video stream.
var ErrNoVideo = errors.New("source: input has no video stream")

// URLOptions configures a URLSource. The zero value decodes a file or URL
// to full-size BGR24 images as fast as the consumer takes them.
type URLOptions struct {
	// Camera is the name set in ChImage.Camera. Default DefaultURLCamera
	// ("url").
	Camera string
	// Format of ChImage.Data. Default BGR24.
	Format chrysalis.PixelFormat
	// Width and Height resize during the format conversion (one swscale
	// pass). 0, 0 (default) keeps the source size; one 0 keeps the aspect.
	Width, Height int
	// Realtime paces a file at its frame timing, as a live camera would
	// deliver it. Default false: as fast as the consumer takes frames.
	// Live URLs are paced by their sender; it does not apply to them.
	Realtime bool
	// Loop restarts a file at its end; frame timestamps keep increasing
	// across passes. Default false: Run returns nil at the end. Does not
	// apply to live URLs (they end when the sender ends; there is no
	// reconnect: use package ingest for a supervised camera).
	Loop bool
	// Threads is the decoder thread count. Default 0: FFmpeg's choice for
	// files, 1 for live URLs (frame threading delays each frame by
	// threads-1 packets).
	Threads int
	// InputFormat forces a demuxer ("flv", "mpegts", "v4l2"). Default: probe.
	InputFormat string
	// InputOptions are passed to avformat_open_input, after ours (they
	// win), e.g. {"rtsp_transport": "tcp"} or {"listen": "1"}.
	InputOptions map[string]string
	// ReadTimeout bounds each blocking network read (rw_timeout, and the
	// RTSP socket timeout) of a live URL. Default DefaultURLReadTimeout
	// (10 s). Cancelling ctx interrupts any read at once regardless.
	ReadTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// URLSource demuxes any FFmpeg input (a file, or an rtsp/rtmp/http/srt...
// URL) with go-astiav and decodes its first video stream to images, without
// a frame cache.
//
// Frame timestamps: each packet gets an id as a cache would give it (ID.MS:
// for a live URL the wall clock when it was read; for a file the wall-clock
// time Run started plus the packet's dts offset from the first packet, plus
// the earlier passes' durations when looping), and ChImage.Time is that
// plus the packet's reorder delay (pts − dts), as for cached frames, so a
// file looks like a camera that started when Run did. ChImage.Packet carries the encoded packet (Data, PTS, DTS,
// TimeBase, codec name, extradata on keyframes) so a video sink can remux
// untouched frames. ChImage.ID.Seq counts packets since Run started, so ids are unique.
//
// Cancelling ctx interrupts a blocking open or read through FFmpeg's
// interrupt callback (context.AfterFunc); Run then returns ctx.Err().
//
// Image buffers come from the URLSource's own chrysalis.ImagePool: the last
// Release of an image returns its buffer for a later frame.
type URLSource struct {
	// URL is the FFmpeg input: a path or a URL. Required.
	URL string
	// Options configures decoding and pacing.
	Options URLOptions

	frames, passes atomic.Int64
	counters       decode.Counters     // the decode session's
	pool           chrysalis.ImagePool // image buffers, recycled by Release
}

var _ flow.Source = (*URLSource)(nil)

// URL returns a source that decodes the FFmpeg input u.
func URL(u string, o URLOptions) *URLSource { return &URLSource{URL: u, Options: o} }

// Frames counts the images sent; Corrupt counts packets the decoder
// rejected (decoding continues). Safe from any goroutine.
func (s *URLSource) Frames() int64 { return s.frames.Load() }

// Corrupt counts packets the decoder rejected.
func (s *URLSource) Corrupt() int64 { return s.counters.Corrupt.Load() }

// Skipped counts packets not decoded because no keyframe preceded them (a
// live stream joined mid-GOP, or after a corrupt packet).
func (s *URLSource) Skipped() int64 { return s.counters.Skipped.Load() }

// Passes counts the completed passes over a file (loops).
func (s *URLSource) Passes() int64 { return s.passes.Load() }

// urlRun is one Run's state across passes.
type urlRun struct {
	s      *URLSource
	o      URLOptions
	log    *slog.Logger
	live   bool
	input  string // redacted
	base   time.Time
	offset time.Duration // media time of the earlier passes
	seq    uint64
}

// Run implements flow.Source. It returns nil when a file ends (unless
// Loop) or a live URL's sender ends the stream, ctx.Err() on cancel, and
// other errors as they come (open failure, no video stream...).
func (s *URLSource) Run(ctx context.Context, out chan<- flow.Image) error {
	if s.URL == "" {
		return errors.New("source: URLSource needs a URL")
	}
	o := s.Options
	if o.Camera == "" {
		o.Camera = DefaultURLCamera
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultURLReadTimeout
	}
	if o.Format.BytesPerPixel() == 0 {
		return fmt.Errorf("source: unsupported pixel format %v", o.Format)
	}
	r := &urlRun{s: s, o: o, live: avin.IsNetwork(s.URL), input: avin.Redact(s.URL), base: time.Now()}
	r.log = o.Logger.With("input", r.input, "camera", o.Camera)
	for {
		n, dur, err := r.pass(ctx, out)
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			return err
		}
		s.passes.Add(1)
		if r.live || !o.Loop {
			return nil
		}
		if n == 0 {
			return fmt.Errorf("source: %s: a whole pass produced no frame; not looping", r.input)
		}
		r.offset += dur
	}
}

// openOptions are the avformat_open_input options: ours, then the user's.
func (r *urlRun) openOptions() map[string]string {
	m := map[string]string{}
	if r.live {
		avin.SetTimeouts(m, avin.Scheme(r.s.URL), r.o.ReadTimeout)
	}
	maps.Copy(m, r.o.InputOptions)
	if m["listen"] != "" && m["listen"] != "0" {
		delete(m, "rw_timeout") // waiting for a pusher is unbounded; ctx cancels it
	}
	return m
}

// pass reads the input once. It returns the number of frames sent and the
// media duration covered (for the next loop pass's timestamps).
func (r *urlRun) pass(ctx context.Context, out chan<- flow.Image) (int64, time.Duration, error) {
	// Cancel interrupts a blocking open/read now; Free waits for a running
	// cancel callback before it frees the format context.
	input, err := avin.Alloc(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("source: %w", err)
	}
	defer input.Free()
	fc := input.FC

	dict, err := avin.Dictionary(r.openOptions())
	if err != nil {
		return 0, 0, fmt.Errorf("source: %w", err)
	}
	defer dict.Free()
	var ifmt *astiav.InputFormat
	if r.o.InputFormat != "" {
		if ifmt = astiav.FindInputFormat(r.o.InputFormat); ifmt == nil {
			return 0, 0, fmt.Errorf("source: unknown input format %q", r.o.InputFormat)
		}
	}
	if err := fc.OpenInput(r.s.URL, ifmt, dict); err != nil {
		return 0, 0, fmt.Errorf("source: open %s: %w", r.input, err)
	}
	defer fc.CloseInput()
	if err := fc.FindStreamInfo(nil); err != nil {
		return 0, 0, fmt.Errorf("source: probe %s: %w", r.input, err)
	}
	vs := avin.VideoStream(fc)
	if vs == nil {
		return 0, 0, fmt.Errorf("source: %s: %w", r.input, ErrNoVideo)
	}
	codec := avin.Codec(vs.CodecParameters())
	threads := r.o.Threads
	if threads == 0 && r.live {
		threads = 1
	}
	sess := decode.New(decode.Options{Camera: r.o.Camera, Format: r.o.Format, Width: r.o.Width, Height: r.o.Height,
		Threads: threads, Pool: &r.s.pool, Counters: &r.s.counters, Logger: r.log})
	defer sess.Close()
	d := &urlPass{r: r, out: out, tb: vs.TimeBase().Float64(), firstDTS: av.NoPTS, frameDur: frameDuration(vs)}
	r.log.Debug("input open", "codec", codec.Name, "width", codec.Width, "height", codec.Height, "live", r.live)

	pkt := astiav.AllocPacket()
	if pkt == nil {
		return 0, 0, errors.New("source: allocating a packet failed")
	}
	defer pkt.Free()
	emit := func(f *av.Frame, p media.Packet) error { return d.emit(ctx, sess, f, p) }
	for {
		if err := fc.ReadFrame(pkt); err != nil {
			if ctx.Err() != nil {
				return d.n, d.span(), ctx.Err()
			}
			if errors.Is(err, astiav.ErrEagain) {
				if err := sleep(ctx, 5*time.Millisecond); err != nil {
					return d.n, d.span(), err
				}
				continue
			}
			if errors.Is(err, astiav.ErrEof) {
				break
			}
			return d.n, d.span(), fmt.Errorf("source: read %s: %w", r.input, err)
		}
		if pkt.StreamIndex() != vs.Index() {
			pkt.Unref()
			continue
		}
		p := d.packet(pkt, codec)
		pkt.Unref()
		// A live stream joined mid-GOP: the session skips to the first
		// keyframe (counted in Skipped).
		if err := sess.Feed(ctx, p, emit); err != nil {
			return d.n, d.span(), err
		}
	}
	return d.n, d.span(), sess.Flush(emit)
}

// frameDuration is the stream's nominal frame interval, 40 ms if unknown.
func frameDuration(vs *astiav.Stream) time.Duration {
	for _, fr := range []astiav.Rational{vs.AvgFrameRate(), vs.RFrameRate()} {
		if fr.Num() > 0 && fr.Den() > 0 {
			if d := time.Duration(float64(time.Second) * float64(fr.Den()) / float64(fr.Num())); d > 0 && d < 10*time.Second {
				return d
			}
		}
	}
	return 40 * time.Millisecond
}

// urlPass is one pass's packet numbering and timing.
type urlPass struct {
	r        *urlRun
	out      chan<- flow.Image
	tb       float64
	pkts     int64
	n        int64
	firstDTS int64
	lastOff  time.Duration // media offset of the newest packet in this pass
	frameDur time.Duration
}

// span is the media time this pass covered: its last packet's offset plus
// one frame.
func (d *urlPass) span() time.Duration {
	if d.pkts == 0 {
		return 0
	}
	return d.lastOff + d.frameDur
}

// packet turns the demuxed packet into a media.Packet with its own id:
// for a live URL the wall clock when it was read, for a file the time Run
// started plus the packet's dts offset (plus the earlier passes), so the
// session's frame times are base + pts offset. Seq counts packets since
// Run started, so ids are unique. pkt.Data is a copy (C.GoBytes).
func (d *urlPass) packet(pkt *astiav.Packet, codec media.Codec) media.Packet {
	r := d.r
	dts := pkt.Dts()
	if dts == av.NoPTS {
		dts = pkt.Pts()
	}
	var t time.Time
	switch {
	case r.live:
		t = time.Now()
	case dts == av.NoPTS:
		if d.pkts > 0 {
			d.lastOff += d.frameDur
		}
		t = r.base.Add(r.offset + d.lastOff)
	default:
		if d.firstDTS == av.NoPTS {
			d.firstDTS = dts
		}
		d.lastOff = time.Duration(float64(dts-d.firstDTS) * d.tb * float64(time.Second))
		t = r.base.Add(r.offset + d.lastOff)
	}
	key := pkt.Flags().Has(astiav.PacketFlagKey)
	p := media.Packet{ID: media.ID{MS: uint64(t.UnixMilli()), Seq: r.seq}, Timestamp: t.UnixMilli(), Keyframe: key,
		Data: pkt.Data(), PTS: pkt.Pts(), DTS: pkt.Dts(), TimeBase: d.tb,
		Width: codec.Width, Height: codec.Height, CodecName: codec.Name, PixFmt: codec.PixFmt, Number: d.pkts + 1}
	if key {
		p.Extradata = codec.Extradata
	}
	r.seq++
	d.pkts++
	return p
}

// emit converts one decoded frame and sends it, paced for a realtime file.
func (d *urlPass) emit(ctx context.Context, sess *decode.Session, f *av.Frame, p media.Packet) error {
	r := d.r
	img, err := sess.Convert(f, p)
	if err != nil {
		return fmt.Errorf("source: %s: %w", r.input, err)
	}
	if r.o.Realtime && !r.live {
		if err := sleepUntil(ctx, img.Time); err != nil {
			img.Release()
			return err
		}
	}
	if err := flow.Send(ctx, d.out, img); err != nil {
		return err
	}
	d.n++
	r.s.frames.Add(1)
	return nil
}
