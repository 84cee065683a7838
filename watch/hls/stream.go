// Package hls publishes a camera's frame cache as HTTP Live Streaming: the
// cached encoded packets are remuxed (never decoded or re-encoded) into
// FFmpeg's hls muxer, which writes a sliding-window playlist and MPEG-TS
// segments.
//
// [Stream] writes one camera into a directory until its context ends.
// [Server] serves /hls/<camera>/index.m3u8 and the segments over HTTP,
// starting a camera's Stream on the first playlist request and stopping it
// when nobody has asked for a while:
//
//	hs := hls.NewServer(cache, hls.ServerOptions{})
//	defer hs.Close() // stops every stream and removes their directories
//	http.Handle("/hls/", hs)
//
// Any HLS player plays the playlist: Safari and iOS natively, other
// browsers with hls.js, `ffplay http://host/hls/cam1/index.m3u8`.
package hls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/avmux"
	"github.com/chryscloud/chrysalis-go/media"
)

// Defaults of Options.
const (
	DefaultSegmentDuration = 2 * time.Second
	DefaultListSize        = 5
)

// PlaylistName is the playlist's file name in a Stream's directory.
const PlaylistName = "index.m3u8"

// segmentPattern is the segments' file name pattern (FFmpeg's), and
// segmentGlob matches what it produces.
const (
	segmentPattern = "seg%05d.ts"
	segmentGlob    = "seg*.ts"
)

// Options configures Stream. The zero value writes 2 s segments and keeps
// five of them in the playlist.
type Options struct {
	// SegmentDuration is the target segment length (hls_time). Segments
	// are cut at keyframes only, so a segment lasts at least one GOP.
	// Default 2 s; values below 1 s are raised to 1 s, since HLS target
	// durations are whole seconds (FFmpeg would announce 0).
	SegmentDuration time.Duration
	// ListSize is the number of segments in the playlist (hls_list_size);
	// older segment files are deleted. Default 5.
	ListSize int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	switch {
	case o.SegmentDuration <= 0:
		o.SegmentDuration = DefaultSegmentDuration
	case o.SegmentDuration < time.Second:
		o.SegmentDuration = time.Second
	}
	if o.ListSize <= 0 {
		o.ListSize = DefaultListSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// readPage is how many packets Stream asks the cache for at a time, and
// readBlock how long one blocking read waits.
const (
	readPage  = 128
	readBlock = time.Second
)

// Stream remuxes camera's packets from c into an HLS playlist
// (dir/index.m3u8) and segments (dir/seg00000.ts, ...) until ctx ends.
//
// It starts at the newest keyframe in the cache (waiting for one when there
// is none yet), so the first segment is complete within a GOP, then follows
// new packets as they arrive. The playlist keeps the newest o.ListSize
// segments; older segment files are deleted. Files are written under a
// temporary name and renamed when complete, so a reader never sees a
// partial playlist or segment.
//
// Timestamps are the packets' cache times in milliseconds from the first
// packet, corrected by the packets' own DTS steps where those agree with the
// cache clock (as mp4.Writer does); a packet's presentation time adds
// its own reorder delay (PTS-DTS). A keyframe with other codec parameters
// (a camera reconnecting with another resolution or codec) closes the muxer
// and opens a new one that continues the playlist after an
// EXT-X-DISCONTINUITY.
//
// dir must exist; Stream does not remove it. When ctx ends, Stream writes
// the trailer (the last segment and an EXT-X-ENDLIST) and returns
// ctx.Err(). An unknown camera is an error wrapping cache.ErrUnknownCamera;
// an empty cache is waited on.
func Stream(ctx context.Context, c cache.Cache, camera, dir string, o Options) error {
	o = o.withDefaults()
	m := &muxer{cache: c, camera: camera, dir: dir, o: o, log: o.Logger.With("camera", camera), clock: avmux.Clock{Rate: ticksPerSecond}}
	defer m.finish()
	start, err := firstKeyframe(ctx, c, camera)
	if err != nil {
		return err
	}
	if err := m.write(ctx, start); err != nil {
		return err
	}
	last := start.ID
	for {
		pkts, err := c.ReadAfter(ctx, camera, last, readPage, readBlock)
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			return fmt.Errorf("hls: reading camera %q: %w", camera, err)
		}
		for _, p := range pkts {
			if err := m.write(ctx, p); err != nil {
				return err
			}
			last = p.ID
		}
	}
}

// firstKeyframe returns the newest cached keyframe, or waits for the next
// one when the cache has none.
func firstKeyframe(ctx context.Context, c cache.Cache, camera string) (cache.Packet, error) {
	kf, err := c.KeyframeAtOrBefore(ctx, camera, cache.MaxID)
	switch {
	case err == nil:
		return kf, nil
	case ctx.Err() != nil:
		return cache.Packet{}, ctx.Err()
	case !errors.Is(err, cache.ErrNotFound):
		return cache.Packet{}, fmt.Errorf("hls: %w", err)
	}
	after := cache.MinID
	st, err := c.Stats(ctx, camera)
	switch {
	case err == nil:
		after = st.Last
	case errors.Is(err, cache.ErrEmpty):
	default:
		return cache.Packet{}, fmt.Errorf("hls: %w", err)
	}
	for {
		pkts, err := c.ReadAfter(ctx, camera, after, readPage, readBlock)
		if cerr := ctx.Err(); cerr != nil {
			return cache.Packet{}, cerr
		}
		if err != nil {
			return cache.Packet{}, fmt.Errorf("hls: reading camera %q: %w", camera, err)
		}
		for _, p := range pkts {
			if p.Keyframe {
				return p, nil
			}
			after = p.ID
		}
	}
}

// tb is the time base of the packets handed to the muxer: milliseconds,
// the resolution of cache timestamps.
var tb = astiav.NewRational(1, ticksPerSecond)

const ticksPerSecond = 1000

// defaultDur is a packet's duration (ms) when there is no step from a
// previous packet to copy: one frame at 25 fps.
const defaultDur = 40

// muxer is one camera's hls muxer plus the timestamp state that survives
// muxer restarts.
type muxer struct {
	cache  cache.Cache
	camera string
	dir    string
	o      Options
	log    *slog.Logger

	fc     *astiav.FormatContext
	st     *astiav.Stream
	pkt    *astiav.Packet
	buf    []byte
	codec  cache.Codec // the parameters the open muxer was set up with
	opened int         // muxers opened so far

	clock      avmux.Clock // packet times in ms
	lastNumber int64
	gap        bool
}

// write muxes one packet, in cache order. Packets before the first
// keyframe, and after a gap in the ingest's numbering up to the next
// keyframe, are skipped: they could not be decoded.
func (m *muxer) write(ctx context.Context, p cache.Packet) error {
	if len(p.Data) == 0 {
		return nil
	}
	if media.NumberGap(m.lastNumber, p.Number) && !p.Keyframe && m.fc != nil {
		if !m.gap {
			m.log.Warn("hls: gap in packet numbers; skipping to the next keyframe", "after", m.lastNumber, "got", p.Number)
		}
		m.gap = true
	}
	if p.Number > 0 {
		m.lastNumber = p.Number
	}
	if p.Keyframe {
		m.gap = false
		cd, err := m.codecFor(ctx, p)
		if err != nil {
			return err
		}
		if m.fc != nil && !compatible(m.codec, cd) {
			m.log.Info("hls: codec parameters changed; restarting the muxer", "codec", cd.Name, "width", cd.Width, "height", cd.Height)
			if err := m.close(); err != nil {
				m.log.Warn("hls: closing the muxer", "err", err)
			}
		}
		if m.fc == nil {
			if err := m.open(cd); err != nil {
				m.close()
				return err
			}
		}
	}
	if m.fc == nil || m.gap {
		return nil
	}
	dts, pts := m.clock.Next(p)
	// The duration is the step from the packet before: the next one is not
	// here yet.
	dur := m.clock.Step()
	if dur <= 0 {
		dur = defaultDur
	}
	if err := avmux.WritePacket(m.fc, m.st, m.pkt, &m.buf, tb,
		avmux.Packet{Data: p.Data, PTS: pts, DTS: dts, Dur: dur, Key: p.Keyframe}); err != nil {
		return fmt.Errorf("hls: camera %q: writing packet %s: %w", m.camera, p.ID, err)
	}
	return nil
}

// codecFor returns the parameters to mux from keyframe p: the packet's own
// (an ingest puts them on every keyframe), completed from the cache's codec
// info.
func (m *muxer) codecFor(ctx context.Context, p cache.Packet) (cache.Codec, error) {
	cd := avmux.PacketCodec(p)
	if cd.Name != "" && len(cd.Extradata) > 0 && cd.Width > 0 && cd.Height > 0 {
		return cd, nil
	}
	cc, err := m.cache.Codec(ctx, m.camera)
	switch {
	case err == nil:
		if cd.Name == "" || strings.EqualFold(cd.Name, cc.Name) {
			cd.Name = cc.Name
			if len(cd.Extradata) == 0 {
				cd.Extradata = cc.Extradata
			}
			if cd.Width <= 0 || cd.Height <= 0 {
				cd.Width, cd.Height = cc.Width, cc.Height
			}
			if cd.PixFmt == "" {
				cd.PixFmt = cc.PixFmt
			}
		}
	case errors.Is(err, cache.ErrNotFound), errors.Is(err, cache.ErrUnknownCamera):
	default:
		return cache.Codec{}, fmt.Errorf("hls: %w", err)
	}
	if cd.Name == "" {
		cd.Name = avmux.DefaultCodec
	}
	return cd, nil
}

// compatible reports whether a keyframe with parameters b fits a muxer set
// up with a: what both know must agree.
func compatible(a, b cache.Codec) bool {
	switch {
	case !strings.EqualFold(a.Name, b.Name):
		return false
	case a.Width > 0 && a.Height > 0 && b.Width > 0 && b.Height > 0 && (a.Width != b.Width || a.Height != b.Height):
		return false
	case len(a.Extradata) > 0 && len(b.Extradata) > 0 && !bytes.Equal(a.Extradata, b.Extradata):
		return false
	}
	return true
}

// open creates the hls muxer for cd and writes its header. After the first
// muxer, the playlist is continued (append_list) behind a discontinuity.
func (m *muxer) open(cd cache.Codec) error {
	id, err := avmux.CodecID(cd.Name)
	if err != nil {
		return fmt.Errorf("hls: %w", err)
	}
	fc, err := astiav.AllocOutputFormatContext(nil, "hls", filepath.Join(m.dir, PlaylistName))
	if err != nil {
		return fmt.Errorf("hls: allocating the hls muxer: %w", err)
	}
	if fc == nil {
		return errors.New("hls: allocating the hls muxer failed")
	}
	m.fc = fc // freed by close
	if m.pkt == nil {
		if m.pkt = astiav.AllocPacket(); m.pkt == nil {
			return errors.New("hls: allocating a packet failed")
		}
	}
	st := fc.NewStream(nil)
	if st == nil {
		return errors.New("hls: creating the video stream failed")
	}
	if err := avmux.SetCodecParameters(st.CodecParameters(), id, cd); err != nil {
		return fmt.Errorf("hls: %w", err)
	}
	st.SetTimeBase(tb)
	m.st = st

	d := astiav.NewDictionary()
	defer d.Free()
	// temp_file: segments and the playlist appear complete (rename), so an
	// HTTP server can hand them out while the muxer writes.
	// omit_endlist: a restart continues the playlist, so only the final
	// close ends it (see finish).
	flags := "delete_segments+temp_file+omit_endlist"
	if m.opened > 0 {
		// Continue the numbering and the list behind an
		// EXT-X-DISCONTINUITY.
		flags += "+append_list"
	}
	for _, kv := range [][2]string{
		{"hls_time", strconv.FormatFloat(m.o.SegmentDuration.Seconds(), 'f', 3, 64)},
		{"hls_list_size", strconv.Itoa(m.o.ListSize)},
		{"hls_flags", flags},
		// FFmpeg expands %d in the pattern: escape the directory's %.
		{"hls_segment_filename", filepath.Join(strings.ReplaceAll(m.dir, "%", "%%"), segmentPattern)},
	} {
		if err := d.Set(kv[0], kv[1], astiav.NewDictionaryFlags()); err != nil {
			return fmt.Errorf("hls: option %s: %w", kv[0], err)
		}
	}
	if err := fc.WriteHeader(d); err != nil {
		return fmt.Errorf("hls: camera %q: writing the header: %w", m.camera, err)
	}
	m.codec = cd
	m.opened++
	return nil
}

// finish closes the muxer and ends the playlist with EXT-X-ENDLIST, so
// players know the stream is over.
func (m *muxer) finish() {
	wrote := m.codec.Name != ""
	if err := m.close(); err != nil {
		m.log.Warn("hls: closing the muxer", "err", err)
	}
	if !wrote {
		return
	}
	path := filepath.Join(m.dir, PlaylistName)
	b, err := os.ReadFile(path)
	if err != nil || bytes.Contains(b, []byte("#EXT-X-ENDLIST")) {
		return
	}
	// Atomically, as the muxer writes it.
	tmp := path + ".end.tmp"
	if err := os.WriteFile(tmp, append(b, "#EXT-X-ENDLIST\n"...), 0o644); err == nil {
		err = os.Rename(tmp, path)
		if err != nil {
			os.Remove(tmp)
		}
	}
}

// close writes the trailer and frees the muxer. Safe to call when nothing
// is open.
func (m *muxer) close() error {
	var err error
	if m.fc != nil {
		if m.codec.Name != "" { // the header was written
			if werr := m.fc.WriteTrailer(); werr != nil {
				err = fmt.Errorf("hls: camera %q: writing the trailer: %w", m.camera, werr)
			}
		}
		m.fc.Free()
		m.fc, m.st, m.codec = nil, nil, cache.Codec{}
	}
	if m.pkt != nil {
		m.pkt.Free()
		m.pkt = nil
	}
	return err
}
