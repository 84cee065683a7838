package chrysalis

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/av"
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
	// Skipped counts packets not decoded: those after a corrupt one until
	// the next keyframe, and those before the first keyframe of a window.
	Skipped int64
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

	pos  uint64   // presentation ms of the newest frame Latest returned
	seen cache.ID // newest entry Latest looked at
	live decState
	shot decState
	pool ImagePool

	decoded, converted, corrupt, skipped, reinits, jumps atomic.Int64
}

// Camera returns a handle on camera id.
func (c *Client) Camera(id string, o CameraOptions) *Camera {
	if o.Logger == nil {
		o.Logger = c.log
	}
	if o.LiveThreads == 0 {
		o.LiveThreads = 1
	}
	cam := &Camera{cl: c, id: id, o: o, log: o.Logger.With("camera", id)}
	cam.live.init(cam, o.LiveThreads)
	cam.shot.init(cam, 1)
	return cam
}

// ID is the camera id.
func (c *Camera) ID() string { return c.id }

// Stats returns the camera's counters; safe to call from any goroutine.
func (c *Camera) Stats() CameraStats {
	return CameraStats{Decoded: c.decoded.Load(), Converted: c.converted.Load(), Corrupt: c.corrupt.Load(),
		Skipped: c.skipped.Load(), Reinits: c.reinits.Load(), Jumps: c.jumps.Load()}
}

// Close releases the decoders. Idempotent.
func (c *Camera) Close() error {
	c.live.close()
	c.shot.close()
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

// Latest returns the newest frame, decoded. It never returns a frame this
// Camera already returned: when nothing newer arrived it returns (nil, nil),
// "no new frame yet", which is not an error. A caller slower than the
// camera skips ahead: GOPs that are already stale are not decoded at all
// (it jumps to the newest keyframe), and inside the current GOP every packet
// is decoded but only the newest frame is converted. An empty cache is
// ErrEmpty. The image is the caller's (see ChImage for Release).
func (c *Camera) Latest(ctx context.Context) (*ChImage, error) {
	if c.o.KeyframesOnly {
		kf, err := c.cl.cache.KeyframeAtOrBefore(ctx, c.id, cache.MaxID)
		if errors.Is(err, cache.ErrNotFound) {
			return nil, c.emptyOr(ctx, nil)
		}
		if err != nil {
			return nil, err
		}
		c.seen = kf.ID
		if presentationMS(kf) <= c.pos {
			return nil, nil
		}
		img, err := c.shot.decodeOne(ctx, kf)
		if img != nil {
			c.pos = presentationMS(kf)
		}
		return img, err
	}
	newest, err := c.cl.cache.RevRange(ctx, c.id, cache.MaxID, cache.MinID, 1)
	if err != nil {
		return nil, err
	}
	if len(newest) == 0 {
		return nil, c.emptyOr(ctx, nil)
	}
	n := newest[0]
	if n.ID == c.seen && !c.live.fed.IsZero() && c.live.fed.Compare(n.ID) >= 0 {
		return nil, nil // nothing arrived since the last call
	}
	c.seen = n.ID
	return c.decodeUpTo(ctx, n.ID)
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
// camera is an error.
func (c *Camera) WaitLatest(ctx context.Context) (*ChImage, error) {
	for {
		img, err := c.Latest(ctx)
		if img != nil || (err != nil && !errors.Is(err, cache.ErrEmpty)) {
			return img, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Block until anything newer than what Latest looked at arrives.
		if _, err := c.cl.cache.ReadAfter(ctx, c.id, c.seen, 1, time.Second); err != nil && !errors.Is(err, cache.ErrUnknownCamera) {
			return nil, err
		}
	}
}

// decodeUpTo decodes the live decoder forward to target (jumping to the
// newest keyframe when the decoder's position is in a stale GOP) and
// converts only the newest frame that came out.
func (c *Camera) decodeUpTo(ctx context.Context, target cache.ID) (*ChImage, error) {
	s := &c.live
	kf, err := c.cl.cache.KeyframeAtOrBefore(ctx, c.id, target)
	if errors.Is(err, cache.ErrNotFound) {
		return nil, nil // only the tail of a trimmed GOP: nothing decodable yet
	}
	if err != nil {
		return nil, err
	}
	from := s.fed.Next()
	if s.fed.IsZero() || s.broken || s.fed.Compare(kf.ID) < 0 {
		if !s.fed.IsZero() {
			c.jumps.Add(1) // the packets between are stale: never fetched
		}
		if err := s.restart(ctx, kf); err != nil {
			return nil, err
		}
		from = kf.ID
	}
	pkts, err := c.cl.cache.Range(ctx, c.id, from, target, 0)
	if err != nil {
		return nil, err
	}
	s.hold.Unref()
	var best cache.Packet
	var bestMS uint64
	for _, p := range pkts {
		err := s.feed(ctx, p, func(f *av.Frame, meta cache.Packet) error {
			if pm := presentationMS(meta); pm > bestMS {
				best, bestMS = meta, pm
				return s.hold.Ref(f)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	defer s.hold.Unref()
	f := s.hold.Frame()
	if f == nil || bestMS <= c.pos {
		return nil, nil
	}
	img, err := s.convert(f, best)
	if err != nil {
		return nil, err
	}
	c.pos = bestMS
	return img, nil
}

// Screenshot returns the keyframe nearest before (or at) t, decoded, as the
// Python SDK did. When there is none it returns an error wrapping
// ErrNotFound.
func (c *Camera) Screenshot(ctx context.Context, t time.Time) (*ChImage, error) {
	kf, err := c.cl.cache.KeyframeAtOrBefore(ctx, c.id, cache.ID{MS: uint64(t.UnixMilli()), Seq: ^uint64(0)})
	if err != nil {
		if errors.Is(err, cache.ErrNotFound) {
			return nil, fmt.Errorf("screenshot at %s: no keyframe at or before it: %w", t.UTC().Format(time.RFC3339Nano), err)
		}
		return nil, err
	}
	return c.shot.decodeOne(ctx, kf)
}

// pastPage is how many packets Past fetches per cache round trip.
const pastPage = 128

var errStop = errors.New("stop")

// Past yields the frames whose timestamps fall in [start, end] (inclusive,
// millisecond precision), oldest first. Decoding starts at the keyframe at
// or before start; frames before start are decoded but not converted, and
// the decoder is flushed at the end. Breaking out of the loop stops it
// cleanly. A window that starts before the oldest cached frame yields a
// *WindowError wrapping ErrTrimmed; start after end, ErrBadWindow. Errors
// are yielded once, as the last element. Each image is the caller's.
func (c *Camera) Past(ctx context.Context, start, end time.Time) iter.Seq2[*ChImage, error] {
	return func(yield func(*ChImage, error) bool) {
		if err := c.past(ctx, start, end, yield); err != nil && !errors.Is(err, errStop) {
			yield(nil, err)
		}
	}
}

func (c *Camera) past(ctx context.Context, start, end time.Time, yield func(*ChImage, error) bool) error {
	if start.After(end) {
		return &WindowError{Camera: c.id, Start: start, End: end, Err: ErrBadWindow}
	}
	st, err := c.cl.cache.Stats(ctx, c.id)
	if err != nil {
		return err
	}
	sms, ems := uint64(start.UnixMilli()), uint64(end.UnixMilli())
	if sms < st.First.MS {
		return &WindowError{Camera: c.id, Start: start, End: end, First: st.First.Time(), Last: st.Last.Time(), Err: ErrTrimmed}
	}
	endID := cache.ID{MS: ems, Seq: ^uint64(0)}
	var s decState
	s.init(c, c.o.Threads)
	defer s.close()
	emit := func(f *av.Frame, meta cache.Packet) error {
		if pm := presentationMS(meta); pm < sms || pm > ems {
			return nil
		}
		img, err := s.convert(f, meta)
		if err != nil {
			return err
		}
		if !yield(img, nil) {
			return errStop
		}
		return nil
	}
	if c.o.KeyframesOnly {
		from := cache.ID{MS: sms}
		for {
			kfs, err := c.cl.cache.Keyframes(ctx, c.id, from, endID, pastPage)
			if err != nil {
				return err
			}
			for _, kf := range kfs {
				img, err := s.decodeOne(ctx, kf)
				if err != nil {
					return err
				}
				if img != nil && !yield(img, nil) {
					return errStop
				}
			}
			if len(kfs) < pastPage {
				return nil
			}
			from = kfs[len(kfs)-1].ID.Next()
		}
	}
	from := cache.ID{MS: sms}
	kf, err := c.cl.cache.KeyframeAtOrBefore(ctx, c.id, cache.ID{MS: sms, Seq: ^uint64(0)})
	switch {
	case err == nil:
		from = kf.ID
		if err := s.restart(ctx, kf); err != nil {
			return err
		}
	case errors.Is(err, cache.ErrNotFound):
		s.broken = true // decode from the first keyframe inside the window
	default:
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		pkts, err := c.cl.cache.Range(ctx, c.id, from, endID, pastPage)
		if err != nil {
			return err
		}
		for _, p := range pkts {
			if s.dec == nil && p.Keyframe {
				if err := s.restart(ctx, p); err != nil {
					return err
				}
			}
			if err := s.feed(ctx, p, emit); err != nil {
				return err
			}
		}
		if len(pkts) < pastPage {
			break
		}
		from = pkts[len(pkts)-1].ID.Next()
	}
	return s.flush(emit)
}

// decState is one decoder with its converter and the bookkeeping that maps
// output frames back to their packets.
type decState struct {
	cam     *Camera
	threads int
	dec     *av.Decoder
	codec   cache.Codec
	conv    av.Converter
	hold    av.FrameRef
	fed     cache.ID // last packet fed; zero after a reset
	broken  bool     // skip packets until the next keyframe
	meta    map[int64]cache.Packet
	last    cache.Packet
}

func (s *decState) init(c *Camera, threads int) {
	s.cam, s.threads, s.meta = c, threads, map[int64]cache.Packet{}
}

func (s *decState) close() {
	_ = s.dec.Close()
	s.dec = nil
	_ = s.conv.Close()
	s.hold.Free()
}

// codecFor returns the codec parameters to decode from keyframe p: the
// packet's own (an ingest puts the extradata on every keyframe, so GOPs
// cached before a codec change stay decodable), else the cache's codec info,
// else the packet's name alone (Annex-B streams carry SPS/PPS in-band).
func (s *decState) codecFor(ctx context.Context, p cache.Packet) (cache.Codec, error) {
	if p.Keyframe && len(p.Extradata) > 0 && p.CodecName != "" {
		return cache.Codec{Name: p.CodecName, Width: p.Width, Height: p.Height, PixFmt: p.PixFmt, Extradata: p.Extradata}, nil
	}
	cd, err := s.cam.cl.cache.Codec(ctx, s.cam.id)
	if err != nil && !errors.Is(err, cache.ErrUnknownCamera) && !errors.Is(err, cache.ErrNotFound) {
		return cache.Codec{}, err
	}
	if err != nil || (p.CodecName != "" && p.CodecName != cd.Name) {
		cd = cache.Codec{Name: p.CodecName, Width: p.Width, Height: p.Height, PixFmt: p.PixFmt}
		if cd.Name == "" {
			cd.Name = "h264"
		}
	}
	return cd, nil
}

func sameCodec(a, b cache.Codec) bool {
	return a.Name == b.Name && a.Width == b.Width && a.Height == b.Height && string(a.Extradata) == string(b.Extradata)
}

// restart prepares to decode from keyframe kf: it re-reads the codec info
// (a reconnect may have brought new parameters), re-creates the decoder if
// they changed, and otherwise just resets it.
func (s *decState) restart(ctx context.Context, kf cache.Packet) error {
	cd, err := s.codecFor(ctx, kf)
	if err != nil {
		return err
	}
	return s.restartWith(cd)
}

func (s *decState) restartWith(cd cache.Codec) error {
	if s.dec == nil || !sameCodec(cd, s.codec) {
		if s.dec != nil {
			s.cam.reinits.Add(1)
			s.cam.log.Info("codec changed; re-creating decoder", "codec", cd.Name, "width", cd.Width, "height", cd.Height)
		}
		_ = s.dec.Close()
		s.dec = nil
		dec, err := av.NewDecoder(av.CodecParams{Name: cd.Name, Width: cd.Width, Height: cd.Height, PixFmt: cd.PixFmt, Extradata: cd.Extradata},
			av.DecoderOptions{Threads: s.threads, HWDevice: s.cam.o.HWDevice, Logger: s.cam.log})
		if err != nil {
			return fmt.Errorf("camera %q: %w", s.cam.id, err)
		}
		s.dec, s.codec = dec, cd
	} else {
		s.dec.Reset()
	}
	clear(s.meta)
	s.fed, s.broken = cache.ID{}, false
	return nil
}

// feed decodes p and calls fn with every frame that comes out and the
// packet it came from. A packet the decoder rejects is counted as corrupt;
// decoding then skips to the next keyframe.
func (s *decState) feed(ctx context.Context, p cache.Packet, fn func(*av.Frame, cache.Packet) error) error {
	if s.broken || s.dec == nil {
		if !p.Keyframe {
			s.cam.skipped.Add(1)
			return nil
		}
		if err := s.restart(ctx, p); err != nil {
			return err
		}
	} else if p.Keyframe {
		// A reconnect may have brought new parameters: drain the old
		// decoder's frames, then re-create it.
		cd, err := s.codecFor(ctx, p)
		if err != nil {
			return err
		}
		if !sameCodec(cd, s.codec) {
			if err := s.flush(fn); err != nil {
				return err
			}
			if err := s.restartWith(cd); err != nil {
				return err
			}
		}
	}
	if len(s.meta) > 1024 {
		clear(s.meta) // frames the decoder dropped; never grow without bound
	}
	s.meta[p.PTS] = p
	s.last = p
	s.fed = p.ID
	s.cam.decoded.Add(1)
	err := s.dec.Decode(p.Data, p.PTS, p.DTS, p.Keyframe, func(f *av.Frame) error { return fn(f, s.lookup(f)) })
	var de *av.DecodeError
	if errors.As(err, &de) {
		s.cam.corrupt.Add(1)
		s.cam.log.Debug("corrupt packet; skipping to the next keyframe", "id", p.ID.String(), "err", err)
		s.dec.Reset()
		clear(s.meta)
		s.broken = true
		return nil
	}
	return err
}

func (s *decState) lookup(f *av.Frame) cache.Packet {
	if m, ok := s.meta[f.Pts()]; ok {
		delete(s.meta, f.Pts())
		return m
	}
	return s.last
}

// flush drains the decoder.
func (s *decState) flush(fn func(*av.Frame, cache.Packet) error) error {
	if s.dec == nil {
		return nil
	}
	err := s.dec.Flush(func(f *av.Frame) error { return fn(f, s.lookup(f)) })
	var de *av.DecodeError
	if errors.As(err, &de) {
		s.cam.corrupt.Add(1)
		return nil
	}
	clear(s.meta)
	s.fed = cache.ID{}
	return err
}

// decodeOne decodes a single keyframe on its own and converts it.
func (s *decState) decodeOne(ctx context.Context, kf cache.Packet) (*ChImage, error) {
	if err := s.restart(ctx, kf); err != nil {
		return nil, err
	}
	var img *ChImage
	grab := func(f *av.Frame, meta cache.Packet) error {
		if img != nil {
			return nil
		}
		var err error
		img, err = s.convert(f, kf)
		return err
	}
	if err := s.feed(ctx, kf, grab); err != nil {
		return nil, err
	}
	if err := s.flush(grab); err != nil {
		return nil, err
	}
	if img == nil {
		return nil, fmt.Errorf("camera %q: keyframe %s did not decode (corrupt packet)", s.cam.id, kf.ID)
	}
	return img, nil
}

// presentationMS is the frame's cache timestamp: its packet's ms plus the
// packet's reorder delay (pts - dts), so frames of a B-frame stream get
// increasing timestamps in display order. Without B-frames it is the
// packet's ms.
func presentationMS(p cache.Packet) uint64 {
	if p.TimeBase <= 0 || p.PTS == av.NoPTS || p.DTS == av.NoPTS || p.PTS <= p.DTS {
		return p.ID.MS
	}
	return p.ID.MS + uint64(float64(p.PTS-p.DTS)*p.TimeBase*1000+0.5)
}

// convert turns f into a ChImage with a pooled buffer.
func (s *decState) convert(f *av.Frame, p cache.Packet) (*ChImage, error) {
	c := s.cam
	bpp := c.o.Format.BytesPerPixel()
	if bpp == 0 {
		return nil, fmt.Errorf("chrysalis: unsupported pixel format %v", c.o.Format)
	}
	w, h := c.o.Width, c.o.Height
	guessW, guessH := f.Width(), f.Height()
	if w > 0 && h > 0 {
		guessW, guessH = w, h
	}
	buf := c.pool.Buffer(guessW * guessH * bpp)
	out, stride, ow, oh, err := s.conv.Convert(f, w, h, c.o.Format, buf)
	if err != nil {
		c.pool.Put(buf)
		return nil, fmt.Errorf("camera %q: %w", c.id, err)
	}
	c.converted.Add(1)
	img := &ChImage{
		Camera: c.id, Time: time.UnixMilli(int64(presentationMS(p))).UTC(), ID: p.ID, Width: ow, Height: oh, Stride: stride, Format: c.o.Format,
		Data: out, Keyframe: p.Keyframe, PictType: f.PictType(), PTS: f.Pts(), Packet: p,
	}
	c.pool.Attach(img)
	return img, nil
}
