package chrysalis

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/av"
	"github.com/chryscloud/chrysalis-go/internal/decode"
)

// CameraOptions chooses what images a Camera hands out. The zero value
// gives full-size BGR24 images of every frame, software decoding.
type CameraOptions struct {
	// Format of ChImage.Data. Default BGR24.
	Format PixelFormat
	// Width and Height resize in the same swscale pass as the format
	// conversion, so a model that wants 640x360 never pays for a full-size
	// copy. 0, 0 (default) keeps the source size; one 0 keeps the aspect.
	Width, Height int
	// KeyframesOnly fetches and decodes keyframes only, found through the
	// keyframe index: Latest returns the newest keyframe and Past yields one
	// image per keyframe.
	KeyframesOnly bool
	// Threads is the decoder thread count for Past; 0 (default) lets FFmpeg
	// choose.
	Threads int
	// LiveThreads is the decoder thread count for Latest. Default 1: frame
	// threading delays each frame by threads-1 packets, which is latency a
	// live reader does not want.
	LiveThreads int
	// LiveIdle is how long the live follower (see Latest) keeps decoding
	// after the last Latest or WaitLatest call. Default DefaultLiveIdle
	// (10 s).
	LiveIdle time.Duration
	// LiveInline decodes the live stream in the follower goroutine itself,
	// one cgo call per packet, instead of on the decoder's own thread
	// (named chrysalis-dec) while the goroutine parks. Measured on 2 cores
	// with one hard 1080p25 camera (bench/README.md, "Off-thread decoding"):
	// inline costs 12-19% more CPU, because the Go runtime's sysmon polls
	// through every packet's decode, and returns images 1-4 ms fresher at
	// the median on an otherwise idle machine.
	LiveInline bool
	// HWDevice asks for hardware decoding ("cuda", "vaapi"); when no device
	// is present the decoder logs one line and falls back to software.
	HWDevice string
	// Logger defaults to the Client's.
	Logger *slog.Logger
}

// CameraStats are a Camera's counters.
type CameraStats struct {
	// Decoded counts packets sent to a decoder; Converted counts images
	// produced (format conversions).
	Decoded, Converted int64
	// Corrupt counts packets the decoder rejected; decoding then skips to
	// the next keyframe.
	Corrupt int64
	// Skipped counts packets not decoded: those after a gap or a corrupt
	// one until the next keyframe, and those before the first keyframe of
	// a window.
	Skipped int64
	// Gaps counts discontinuities in packet numbers (lost packets, an
	// outage, a trim): decoding never crosses one, it skips to the next
	// keyframe.
	Gaps int64
	// Jumps counts the times Latest left its decoder's position for the
	// newest keyframe: the stale packets between are neither fetched nor
	// decoded.
	Jumps int64
	// Reinits counts decoder re-creations after a codec change.
	Reinits int64
}

// Camera reads one camera. It tracks its own position for Latest, so each
// consumer should have its own Camera. Not safe for concurrent use; Close
// releases its decoders.
type Camera struct {
	cl  *Client
	id  string
	o   CameraOptions
	log *slog.Logger

	seen     cache.ID // KeyframesOnly: newest entry Latest looked at
	follower *follower
	last     frameKey          // the newest frame Latest returned (either mode)
	take     av.FrameRef       // Latest's own reference to the follower's frame
	conv     *decode.Converter // Latest's conversions
	shot     *decode.Session
	pool     ImagePool
	optErr   error // o.Validate(): every read returns it

	n     decode.Counters
	jumps atomic.Int64
}

// Camera returns a handle on camera id. Options that cannot be honoured
// (see CameraOptions.Validate) make every read return an error wrapping
// ErrBadOptions; a size more than MaxUpscale times the source's is refused
// at the first conversion.
func (c *Client) Camera(id string, o CameraOptions) *Camera {
	if o.Logger == nil {
		o.Logger = c.log
	}
	if o.LiveThreads == 0 {
		o.LiveThreads = 1
	}
	if o.LiveIdle <= 0 {
		o.LiveIdle = DefaultLiveIdle
	}
	cam := &Camera{cl: c, id: id, o: o, log: o.Logger.With("camera", id), optErr: o.Validate()}
	cam.shot = cam.session(1)
	cam.conv = decode.NewConverter(cam.sessionOptions(0))
	return cam
}

// ID is the camera id.
func (c *Camera) ID() string { return c.id }

// Stats returns the camera's counters; safe to call from any goroutine.
func (c *Camera) Stats() CameraStats {
	return CameraStats{Decoded: c.n.Decoded.Load(), Converted: c.n.Converted.Load(), Corrupt: c.n.Corrupt.Load(),
		Skipped: c.n.Skipped.Load(), Gaps: c.n.Gaps.Load(), Reinits: c.n.Reinits.Load(), Jumps: c.jumps.Load()}
}

// Close releases the decoders. Idempotent.
func (c *Camera) Close() error {
	if c.follower != nil {
		c.follower.close()
	}
	c.shot.Close()
	c.conv.Close()
	c.take.Free()
	return nil
}

// Probe describes what the cache holds for a camera, computed as the edge
// proxy does: start/end are the first/last entries' ms, frames = XLEN,
// duration = end - start, fps = frames / duration.
type Probe struct {
	Camera string `json:"camera"`
	// StartMS and EndMS are UTC ms since the epoch.
	StartMS int64 `json:"start_timestamp"`
	EndMS   int64 `json:"end_timestamp"`
	// DurationSec is (EndMS - StartMS) / 1000.
	DurationSec float64 `json:"duration"`
	FPS         float64 `json:"fps"`
	Frames      int64   `json:"frames"`
	Keyframes   int64   `json:"keyframes"`
	Codec       string  `json:"codec"`
	Width       int     `json:"width"`
	Height      int     `json:"height"`
	PixFmt      string  `json:"pix_fmt,omitempty"`
}

// Start is StartMS as a time.
func (p Probe) Start() time.Time { return time.UnixMilli(p.StartMS).UTC() }

// End is EndMS as a time.
func (p Probe) End() time.Time { return time.UnixMilli(p.EndMS).UTC() }

// Duration is End - Start.
func (p Probe) Duration() time.Duration { return time.Duration(p.EndMS-p.StartMS) * time.Millisecond }

// Probe reports the camera's cache span, rate, counts and codec.
func (c *Camera) Probe(ctx context.Context) (Probe, error) {
	st, err := c.cl.cache.Stats(ctx, c.id)
	if err != nil {
		return Probe{}, err
	}
	p := Probe{Camera: c.id, StartMS: int64(st.First.MS), EndMS: int64(st.Last.MS), Frames: st.Frames, Keyframes: st.Keyframes}
	p.DurationSec = float64(p.EndMS-p.StartMS) / 1000
	if p.DurationSec > 0 {
		p.FPS = float64(p.Frames) / p.DurationSec
	}
	cd, err := c.cl.cache.Codec(ctx, c.id)
	switch {
	case err == nil:
		p.Codec, p.Width, p.Height, p.PixFmt = cd.Name, cd.Width, cd.Height, cd.PixFmt
	case errors.Is(err, cache.ErrUnknownCamera), errors.Is(err, cache.ErrNotFound):
		// Packets without codec info: take what the newest packet says.
		if last, err := c.cl.cache.RevRange(ctx, c.id, cache.MaxID, cache.MinID, 1); err == nil && len(last) == 1 {
			p.Codec, p.Width, p.Height, p.PixFmt = last[0].CodecName, last[0].Width, last[0].Height, last[0].PixFmt
		}
	default:
		return Probe{}, err
	}
	return p, nil
}

// session returns a decode session labelled with this camera, sharing its
// counters and buffer pool.
func (c *Camera) session(threads int) *decode.Session { return decode.New(c.sessionOptions(threads)) }

func (c *Camera) sessionOptions(threads int) decode.Options {
	return decode.Options{
		Camera: c.id, Format: c.o.Format, Width: c.o.Width, Height: c.o.Height, Threads: threads,
		HWDevice: c.o.HWDevice, Pool: &c.pool, Counters: &c.n, Logger: c.log, CodecInfo: c.codecInfo,
		CheckSize: c.o.CheckSize,
	}
}

// codecInfo is the cache's codec info for the session (ok false: none).
func (c *Camera) codecInfo(ctx context.Context) (cache.Codec, bool, error) {
	cd, err := c.cl.cache.Codec(ctx, c.id)
	if errors.Is(err, cache.ErrUnknownCamera) || errors.Is(err, cache.ErrNotFound) {
		return cache.Codec{}, false, nil
	}
	return cd, err == nil, err
}

// Latest returns the newest frame, decoded. It never returns a frame this
// Camera already returned: when nothing newer arrived it returns (nil, nil),
// "no new frame yet", which is not an error. An empty cache is ErrEmpty.
// The image is the caller's (see ChImage for Release).
//
// The first call starts the camera's live follower: a goroutine that
// decodes the stream ahead of the caller, every packet as it arrives from a
// blocking cache read, keeping only the newest decoded frame unconverted
// (it starts at the newest keyframe; GOPs that go stale while it is behind
// are not decoded). The follower's decoder works on a thread of its own
// (named chrysalis-dec) while the goroutine parks, which keeps the Go
// runtime from polling through every packet's decode (see
// CameraOptions.LiveInline). Latest waits for its first catch-up, then
// converts the newest frame and returns at once, so a slow caller gets a
// frame at most one frame interval plus one decode and one conversion old
// (WaitLatest also waits for a decode in progress, which takes off the
// decode).
//
// A caller whose last three calls came at a steady interval (120 ms or
// more, within 20 ms of each other: a model that takes about the same time
// per image, a ticker) lets the follower save CPU: it leaves the packets
// that arrive after a call in the cache and decodes them back to back
// shortly before the next call is due (from the newest keyframe among
// them), then each packet as it arrives until the call. A call that comes
// earlier than that wakes it: WaitLatest waits for the batch (a few
// decodes), Latest returns the frame it has.
//
// The follower stops at Close, or after CameraOptions.LiveIdle without a
// Latest or WaitLatest call (the next call starts it again), so a Camera
// used only for Past or Screenshot costs nothing. A gap in the packets (an
// outage, a trim) is never decoded across.
func (c *Camera) Latest(ctx context.Context) (*ChImage, error) {
	if c.optErr != nil {
		return nil, c.optErr
	}
	if c.o.KeyframesOnly {
		kf, err := c.cl.cache.KeyframeAtOrBefore(ctx, c.id, cache.MaxID)
		if errors.Is(err, cache.ErrNotFound) {
			return nil, c.emptyOr(ctx, nil)
		}
		if err != nil {
			return nil, err
		}
		c.seen = kf.ID
		// Newer by time, then by id: keyframes may share a millisecond.
		k := frameKey{decode.PresentationMS(kf), kf.ID}
		if !k.after(c.last) {
			return nil, nil
		}
		img, err := c.shot.DecodeOne(ctx, kf)
		if img != nil {
			c.last = k
		}
		return img, err
	}
	img, _, err := c.latestLive(ctx, false, true)
	return img, err
}

// emptyOr returns ErrEmpty (wrapped) when the camera has no packets, else
// def.
func (c *Camera) emptyOr(ctx context.Context, def error) error {
	if _, err := c.cl.cache.Stats(ctx, c.id); err != nil {
		return err
	}
	return def
}

// WaitLatest is Latest that blocks until there is a frame newer than the
// last one returned, or ctx ends. An empty cache is waited on, an unknown
// camera is an error. When the live follower is decoding a packet at the
// time of the call, WaitLatest first waits for that packet (one decode,
// not the packets read after it) and returns its frame if newer: the
// frame returned is then at most one frame interval plus one conversion
// old, where returning the frame held would add the decode. When the
// follower is holding packets back for a batch (see Latest), the call
// wakes it and waits for the batch.
func (c *Camera) WaitLatest(ctx context.Context) (*ChImage, error) {
	if c.optErr != nil {
		return nil, c.optErr
	}
	for first := true; ; first = false {
		if c.o.KeyframesOnly {
			img, err := c.Latest(ctx)
			if img != nil || (err != nil && !errors.Is(err, cache.ErrEmpty)) {
				return img, err
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			// Block until a packet newer than the newest cached one arrives
			// (not merely newer than the keyframe Latest looked at: the
			// P-frames after it would wake this loop at once, every time),
			// then on the packet after each P-frame that arrives, so a
			// P-frame costs one read, not a look at the keyframe index
			// and the stream's span as well. A keyframe, or a second
			// without packets, looks again.
			var last cache.ID
			if _, l, err := c.Span(ctx); err == nil {
				last = l
			}
			if last.Compare(c.seen) < 0 {
				last = c.seen
			}
			for {
				pkts, err := c.cl.cache.ReadAfter(ctx, c.id, last, 1, time.Second)
				if err != nil && !errors.Is(err, cache.ErrUnknownCamera) {
					return nil, err
				}
				if len(pkts) == 0 || pkts[0].Keyframe {
					break
				}
				last = pkts[0].ID
			}
			continue
		}
		img, wake, err := c.latestLive(ctx, true, first)
		if img != nil || (err != nil && !errors.Is(err, cache.ErrEmpty)) {
			return img, err
		}
		select {
		case <-wake: // a new frame, or an error
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Screenshot returns the keyframe nearest before (or at) t, decoded, as the
// Python SDK did: the newest keyframe packet whose id's millisecond is at or
// before t's. When there is none it returns an error wrapping ErrNotFound; a
// time before 1970, zero or past year 9999 is ErrBadTime.
func (c *Camera) Screenshot(ctx context.Context, t time.Time) (*ChImage, error) {
	if c.optErr != nil {
		return nil, c.optErr
	}
	at, err := cache.IDOf(t)
	if err != nil {
		return nil, fmt.Errorf("camera %q: screenshot: %w", c.id, err)
	}
	at.Seq = ^uint64(0) // every packet of t's millisecond
	kf, err := c.cl.cache.KeyframeAtOrBefore(ctx, c.id, at)
	if err != nil {
		if errors.Is(err, cache.ErrNotFound) {
			return nil, fmt.Errorf("screenshot at %s: no keyframe at or before it: %w", t.UTC().Format(time.RFC3339Nano), err)
		}
		return nil, err
	}
	return c.shot.DecodeOne(ctx, kf)
}

// pastPage is how many packets Past fetches per cache round trip.
const pastPage = 128

var errStop = errors.New("stop")

// Past yields one frame per packet whose id's millisecond lies in [start,
// end] (inclusive), in display order: every packet of each millisecond,
// however many share it, B-frames included, so Past over a Probe's
// [Start, End] yields Probe.Frames frames. A frame belongs to the packet it
// was decoded from; its Time is that packet's millisecond plus its reorder
// delay (see ChImage.Time), so with B-frames the last frames' Time can lie a
// few frame intervals past end. Decoding starts at the keyframe at or before
// the window's first packet; frames before the window are decoded but not
// converted. A gap in the packets is never decoded across: the frames after
// it up to the next keyframe are skipped and counted (Stats().Skipped,
// Gaps).
//
// Breaking out of the loop stops it cleanly. A window that starts before
// the oldest cached frame yields a *WindowError wrapping ErrTrimmed; start
// after end, ErrBadWindow; a time before 1970, zero or past year 9999,
// ErrBadTime. Errors are yielded once, as the last element. Each image is
// the caller's.
func (c *Camera) Past(ctx context.Context, start, end time.Time) iter.Seq2[*ChImage, error] {
	return func(yield func(*ChImage, error) bool) {
		if err := c.past(ctx, start, end, yield); err != nil && !errors.Is(err, errStop) {
			yield(nil, err)
		}
	}
}

// window checks [start, end] and returns its first and last possible ids.
func (c *Camera) window(start, end time.Time) (lo, hi cache.ID, err error) {
	for _, t := range []time.Time{start, end} {
		if err := cache.CheckTime(t); err != nil {
			return lo, hi, &WindowError{Camera: c.id, Start: start, End: end, Err: err}
		}
	}
	if start.After(end) {
		return lo, hi, &WindowError{Camera: c.id, Start: start, End: end, Err: ErrBadWindow}
	}
	return cache.IDAt(start), cache.ID{MS: uint64(end.UnixMilli()), Seq: ^uint64(0)}, nil
}

func (c *Camera) past(ctx context.Context, start, end time.Time, yield func(*ChImage, error) bool) error {
	if c.optErr != nil {
		return c.optErr
	}
	lo, hi, err := c.window(start, end)
	if err != nil {
		return err
	}
	st, err := c.cl.cache.Stats(ctx, c.id)
	if err != nil {
		return err
	}
	if lo.MS < st.First.MS {
		return &WindowError{Camera: c.id, Start: start, End: end, First: st.First.Time(), Last: st.Last.Time(), Err: ErrTrimmed}
	}
	s := c.session(c.o.Threads)
	defer s.Close()
	if c.o.KeyframesOnly {
		return c.pastKeyframes(ctx, s, lo, hi, yield)
	}
	from, err := c.windowStart(ctx, lo, hi)
	if err != nil || from == nil {
		return err
	}
	return c.pastPipeline(ctx, s, *from, lo, hi, yield)
}

// pastAhead is how many converted images Past keeps ready ahead of a
// consumer that is slower than the decoder.
const pastAhead = 4

// pastPipeline runs Past's three stages at once: one goroutine fetches the
// next page of packets while the current one decodes, a second decodes and
// converts into a short queue, and the caller's goroutine yields. A
// consumer slower than the decoder then finds the next image converted; a
// faster one waits on the decoder, never on the cache round trip.
func (c *Camera) pastPipeline(ctx context.Context, s *decode.Session, from, lo, hi cache.ID, yield func(*ChImage, error) bool) error {
	g, gctx := errgroup.WithContext(ctx)
	gctx, stop := context.WithCancel(gctx)
	defer stop()
	pages := make(chan []cache.Packet, 1)
	imgs := make(chan *ChImage, pastAhead)
	g.Go(func() error {
		defer close(pages)
		for next := from; ; {
			pkts, err := c.cl.cache.Range(gctx, c.id, next, hi, pastPage)
			if err != nil {
				return err
			}
			if len(pkts) > 0 {
				select {
				case pages <- pkts:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			if len(pkts) < pastPage {
				return nil
			}
			next = pkts[len(pkts)-1].ID.Next()
		}
	})
	g.Go(func() error {
		defer close(imgs)
		emit := func(f *av.Frame, p cache.Packet) error {
			if p.ID.Compare(lo) < 0 || p.ID.Compare(hi) > 0 {
				return nil // a reference frame before the window
			}
			img, err := s.Convert(f, p)
			if err != nil {
				return err
			}
			select {
			case imgs <- img:
				return nil
			case <-gctx.Done():
				img.Release()
				return gctx.Err()
			}
		}
		for pkts := range pages {
			for _, p := range pkts {
				if err := s.Feed(gctx, p, emit); err != nil {
					return err
				}
			}
		}
		if err := gctx.Err(); err != nil {
			return err // the fetch failed: do not flush a partial window
		}
		return s.Flush(emit)
	})
	stopped := false
	for img := range imgs {
		if stopped {
			img.Release() // drained after the consumer stopped
			continue
		}
		if !yield(img, nil) {
			stopped = true
			stop()
		}
	}
	err := g.Wait()
	if stopped {
		return errStop
	}
	return err
}

// windowStart returns where decoding of [lo, hi] starts: the keyframe at
// or before the window's first packet (nil: the window holds no packet).
// When the cache holds no keyframe before it (the head of a trimmed GOP),
// decoding starts at the first packet and skips to the first keyframe.
func (c *Camera) windowStart(ctx context.Context, lo, hi cache.ID) (*cache.ID, error) {
	ws, ok, err := c.WindowStartIDs(ctx, lo, hi)
	if err != nil || !ok {
		return nil, err
	}
	if ws.HasKeyframe {
		return &ws.Keyframe.ID, nil
	}
	return &ws.First.ID, nil
}

// pastKeyframes is Past with KeyframesOnly: one image per keyframe packet
// in [lo, hi], found through the keyframe index.
func (c *Camera) pastKeyframes(ctx context.Context, s *decode.Session, lo, hi cache.ID, yield func(*ChImage, error) bool) error {
	for from := lo; ; {
		kfs, err := c.cl.cache.Keyframes(ctx, c.id, from, hi, pastPage)
		if err != nil {
			return err
		}
		for _, kf := range kfs {
			img, err := s.DecodeOne(ctx, kf)
			if err != nil {
				return err
			}
			if !yield(img, nil) {
				return errStop
			}
		}
		if len(kfs) < pastPage {
			return nil
		}
		from = kfs[len(kfs)-1].ID.Next()
	}
}
