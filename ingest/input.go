package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/avin"
)

// reasonTimeout is the Reason of a connection the watchdog interrupted
// (avin.ReasonCancel: its context ended).
const reasonTimeout = "timeout"

// watchdog interrupts the current connection when a blocking FFmpeg call
// (armed) has produced nothing for the timeout.
type watchdog struct {
	timeout time.Duration
	mu      sync.Mutex
	intr    *avin.Input
	since   time.Time // zero: disarmed
}

func newWatchdog(timeout time.Duration) *watchdog { return &watchdog{timeout: timeout} }

func (w *watchdog) attach(i *avin.Input) {
	w.mu.Lock()
	w.intr, w.since = i, time.Time{}
	w.mu.Unlock()
}

func (w *watchdog) detach() { w.attach(nil) }

func (w *watchdog) arm() { w.armFor(0) }

// armFor arms the watchdog for a call that may legitimately take extra
// time on top of the timeout (the stream probe reads for up to its
// analyzeduration while data flows).
func (w *watchdog) armFor(extra time.Duration) {
	w.mu.Lock()
	w.since = time.Now().Add(extra)
	w.mu.Unlock()
}

func (w *watchdog) disarm() {
	w.mu.Lock()
	w.since = time.Time{}
	w.mu.Unlock()
}

func (w *watchdog) run(ctx context.Context) {
	tick := min(max(w.timeout/8, 5*time.Millisecond), 250*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		if w.intr != nil && !w.since.IsZero() && time.Since(w.since) >= w.timeout {
			w.intr.Interrupt(reasonTimeout)
			w.since = time.Time{}
		}
		w.mu.Unlock()
	}
}

// readState is the reader's state across connections and loop passes.
type readState struct {
	// Loop: PTS/DTS offset for the current pass, and where the previous
	// pass ended (in the stream time base).
	offset     int64
	newPass    bool
	lastOutDTS int64
	lastDur    int64
	haveLast   bool
	lastTB     astiav.Rational
	// Media clock (seconds) for the buffer span and Realtime pacing;
	// started once a packet was read (lastOutDTS is the step's origin).
	media   float64
	started bool
	// Realtime pacing base.
	paceSet   bool
	paceWall  time.Time
	paceMedia float64
	// The codec generation packets carry.
	codec *codecInfo
	// Unused InputOptions were reported.
	optsChecked bool
}

type sessionResult struct {
	eof     bool  // the input ended cleanly
	packets int64 // packets accepted in this session
}

// readLoop opens the input, reads it, and reopens it on failure or end as
// the config says. It returns nil when ctx is done or a non-looping file
// ended, and an error for a file that cannot be read.
func (in *Ingest) readLoop(ctx context.Context, q *queue, wd *watchdog) error {
	st := &readState{}
	bo := backoff{min: in.cfg.BackoffMin, max: in.cfg.BackoffMax}
	file := in.cfg.isFile()
	input := in.input
	for {
		res, err := in.session(ctx, q, wd, st)
		in.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			in.setErr(err)
		}
		switch {
		case err == nil && res.eof && in.cfg.Loop:
			if res.packets == 0 {
				err = fmt.Errorf("ingest: camera %q: %s: no video packet in a whole pass: %w", in.cfg.Camera, input, ErrNoVideo)
				if file {
					return err
				}
				in.log.Warn("input ended without video packets", "input", input)
				break
			}
			in.loops.Add(1)
			st.newPass = true
			in.log.Debug("input ended; looping", "input", input)
			continue
		case err == nil && res.eof && file:
			in.log.Info("input ended", "input", input, "packets", in.packets.Load())
			return nil
		case err != nil && file:
			return fmt.Errorf("ingest: camera %q: %w", in.cfg.Camera, err)
		}
		if res.packets > 0 {
			bo.reset()
		}
		d := bo.next()
		switch {
		case in.cfg.Listen && res.packets > 0:
			in.log.Info("pusher disconnected; listening again", "input", input, "packets", res.packets, "err", err, "in", d)
		case err != nil:
			in.log.Warn("input failed; reconnecting", "input", input, "err", err, "in", d)
		default:
			in.log.Info("input ended; reconnecting", "input", input, "in", d)
		}
		// A new connection starts a new timeline: pace from its first
		// packet, and do not offset live timestamps.
		st.paceSet, st.haveLast, st.newPass, st.offset = false, false, false, 0
		if !sleep(ctx, d) {
			return nil
		}
		in.reconnects.Add(1)
	}
}

// liveAnalyzeDuration bounds the stream probe of live inputs.
const liveAnalyzeDuration = time.Second

// probeAllowance is how long the stream probe may read a live input on
// top of ReadTimeout: its analyzeduration.
func (in *Ingest) probeAllowance() time.Duration {
	if v, ok := in.cfg.InputOptions["analyzeduration"]; ok {
		if us, err := strconv.ParseInt(v, 10, 64); err == nil && us > 0 {
			return time.Duration(us) * time.Microsecond
		}
	}
	if in.cfg.isFile() {
		return 0
	}
	return liveAnalyzeDuration
}

// openOptions are the avformat_open_input options: ours, then the user's.
func (in *Ingest) openOptions() map[string]string {
	o := map[string]string{}
	if !in.cfg.isFile() {
		// FLV (RTMP) never tells the prober that no more streams will come,
		// so avformat_find_stream_info reads for the whole analyzeduration
		// (5s by default) before the first packet is handed out. A second
		// is plenty to find a video stream's parameters.
		o["analyzeduration"] = strconv.FormatInt(liveAnalyzeDuration.Microseconds(), 10)
	}
	switch {
	case in.cfg.Listen:
		// For RTMP, "timeout" is the listen timeout in seconds: leave it
		// (default: wait forever; the context cancels the wait).
		o["listen"] = "1"
	case avin.IsNetwork(in.cfg.Input):
		avin.SetTimeouts(o, avin.Scheme(in.cfg.Input), in.cfg.ReadTimeout)
	}
	maps.Copy(o, in.cfg.InputOptions)
	return o
}

// session runs one connection: open, probe, read until the end, an error,
// or cancel.
func (in *Ingest) session(ctx context.Context, q *queue, wd *watchdog, st *readState) (res sessionResult, err error) {
	input := in.input
	// Cancel interrupts any blocking call now; Free waits for a running
	// callback so nothing outlives the session.
	intr, err := avin.Alloc(ctx)
	if err != nil {
		return res, err
	}
	defer intr.Free()
	fc := intr.FC
	wd.attach(intr)
	defer wd.detach()

	fail := func(op string, err error) error {
		switch intr.Reason() {
		case avin.ReasonCancel:
			return ctx.Err()
		case reasonTimeout:
			return fmt.Errorf("%s %s: no data for %v (input dead?)", op, input, in.cfg.ReadTimeout)
		}
		return fmt.Errorf("%s %s: %w", op, input, err)
	}

	dict, err := avin.Dictionary(in.openOptions())
	if err != nil {
		return res, err
	}
	defer dict.Free()
	var ifmt *astiav.InputFormat
	if in.cfg.Format != "" {
		ifmt = astiav.FindInputFormat(in.cfg.Format)
	}
	if in.cfg.Listen {
		in.log.Info("listening for a pusher", "input", input)
	} else {
		wd.arm() // waiting for a pusher is not bounded; connecting is
	}
	err = fc.OpenInput(in.cfg.Input, ifmt, dict)
	wd.disarm()
	if err != nil {
		return res, fail("open", err)
	}
	defer fc.CloseInput()
	if !st.optsChecked {
		st.optsChecked = true
		for k := range in.cfg.InputOptions {
			if dict.Get(k, nil, astiav.NewDictionaryFlags()) != nil {
				in.log.Warn("input option not used by FFmpeg", "option", k)
			}
		}
	}

	wd.armFor(in.probeAllowance())
	err = fc.FindStreamInfo(nil)
	wd.disarm()
	if err != nil {
		return res, fail("probe", err)
	}
	vs := avin.VideoStream(fc)
	if vs == nil {
		return res, fmt.Errorf("%s: %w", input, ErrNoVideo)
	}
	vidx := vs.Index()
	tb := vs.TimeBase()
	tbf := tb.Float64()
	if st.haveLast && st.lastTB != tb {
		st.haveLast = false // a different time base: offsets do not carry
	}
	cur := codecFromParams(vs.CodecParameters())
	if !cur.same(st.codec) {
		if st.codec != nil {
			in.log.Info("codec parameters changed", "codec", cur.Name, "width", cur.Width, "height", cur.Height)
		}
		st.codec = cur
	} else {
		cur = st.codec
	}
	in.connected.Store(true)
	lv := slog.LevelInfo
	if st.newPass {
		lv = slog.LevelDebug // a loop restart, not news
	}
	in.log.Log(ctx, lv, "input open", "input", input, "codec", cur.Name, "width", cur.Width, "height", cur.Height,
		"pix_fmt", cur.PixFmt, "extradata", len(cur.Extradata))

	sp := newSizeParser(vs.CodecParameters().CodecID(), cur.Extradata)
	defer sp.close()
	pkt := astiav.AllocPacket()
	if pkt == nil {
		return res, errors.New("allocating a packet failed")
	}
	defer pkt.Free()
	gotKey := false
	var sideExtra []byte
	var prevRawDTS int64 = astiav.NoPtsValue
	for {
		wd.arm()
		err := fc.ReadFrame(pkt)
		wd.disarm()
		if err != nil {
			if errors.Is(err, astiav.ErrEagain) && intr.Reason() == "" {
				if !sleep(ctx, 5*time.Millisecond) {
					return res, ctx.Err()
				}
				continue
			}
			if errors.Is(err, astiav.ErrEof) && intr.Reason() == "" {
				res.eof = true
				return res, nil
			}
			return res, fail("read", err)
		}
		if pkt.StreamIndex() != vidx {
			pkt.Unref()
			continue
		}
		key := pkt.Flags().Has(astiav.PacketFlagKey)
		if sd := pkt.SideData(astiav.PacketSideDataTypeNewExtradata); len(sd) > 0 {
			sideExtra = sd
		}
		if !gotKey && !key {
			in.skipped.Add(1)
			pkt.Unref()
			continue
		}
		gotKey = true
		data := pkt.Data() // a Go copy of the packet bytes (C.GoBytes)
		if key {
			// New parameters take effect at a keyframe: new extradata side
			// data (FLV), or a new size announced in-band (MPEG-TS), which
			// the demuxer does not report in the codec parameters.
			c := codecFromParams(vs.CodecParameters())
			if sideExtra != nil {
				c.Extradata = sideExtra
			}
			if w, h, pf, ok := sp.parse(data); ok && (w != c.Width || h != c.Height) {
				c.Width, c.Height = w, h
				if pf != "" {
					c.PixFmt = pf
				}
				if ps := annexBParams(c.Name, data); len(ps) > 0 {
					c.Extradata = ps
				}
			}
			if !c.same(cur) {
				if len(c.Extradata) == 0 && len(cur.Extradata) > 0 && c.Width == cur.Width && c.Height == cur.Height {
					c.Extradata = cur.Extradata
				}
				if !c.same(cur) {
					in.log.Info("codec parameters changed", "codec", c.Name, "width", c.Width, "height", c.Height)
					cur = c
					st.codec = c
				}
			}
		}

		// Timestamps: fill gaps, offset loop passes so they keep rising.
		pts, dts := pkt.Pts(), pkt.Dts()
		if dts == astiav.NoPtsValue {
			dts = pts
		}
		if dts == astiav.NoPtsValue {
			if prevRawDTS != astiav.NoPtsValue {
				dts = prevRawDTS + max(st.lastDur, 1)
			} else {
				dts = 0
			}
		}
		if pts == astiav.NoPtsValue {
			pts = dts
		}
		dur := pkt.Duration()
		if dur <= 0 && prevRawDTS != astiav.NoPtsValue && dts > prevRawDTS {
			dur = dts - prevRawDTS
		}
		prevRawDTS = dts
		if st.newPass {
			st.newPass = false
			if st.haveLast {
				st.offset = st.lastOutDTS + max(st.lastDur, 1) - dts
			}
		}
		outDTS, outPTS := dts+st.offset, pts+st.offset

		// Media clock: advance by the DTS step; a jump (reconnect, bad
		// timestamps) advances by one packet duration instead.
		if st.started {
			step := float64(dur) * tbf
			if d := float64(outDTS-st.lastOutDTS) * tbf; d >= 0 && d < 10 {
				step = d
			}
			st.media += step
		}
		st.started = true
		if dur > 0 {
			st.lastDur = dur
		}
		st.lastOutDTS, st.haveLast, st.lastTB = outDTS, true, tb

		if in.cfg.Realtime {
			if !st.paceSet {
				st.paceSet, st.paceWall, st.paceMedia = true, time.Now(), st.media
			}
			target := st.paceWall.Add(time.Duration((st.media - st.paceMedia) * float64(time.Second)))
			if !sleep(ctx, time.Until(target)) {
				return res, ctx.Err()
			}
		}

		now := in.cfg.Now()
		in.number++
		if key {
			in.keyNumber++
		}
		p := &cache.Packet{
			Timestamp: now.UnixMilli(),
			Keyframe:  key,
			Data:      data,
			PTS:       outPTS, DTS: outDTS,
			TimeBase: tbf,
			Width:    cur.Width, Height: cur.Height,
			FrameType: "P",
			Corrupt:   pkt.Flags().Has(astiav.PacketFlagCorrupt),
			DeviceID:  in.cfg.Camera,
			Number:    in.number, KeyframeNumber: in.keyNumber,
			CodecName: cur.Name,
			PixFmt:    cur.PixFmt,
		}
		if key {
			p.FrameType = "I"
			p.Extradata = cur.Extradata
		}
		pkt.Unref()
		in.packets.Add(1)
		if key {
			in.keyframes.Add(1)
		}
		in.lastPacket.Store(now.UnixMilli())
		res.packets++
		if err := q.push(ctx, &item{pkt: p, codec: cur, media: st.media}); err != nil {
			in.packets.Add(-1) // never queued (cancelled while waiting for room)
			if key {
				in.keyframes.Add(-1)
			}
			return res, err
		}
	}
}
