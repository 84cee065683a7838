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
	ts    tsRepair
	clock clock
	codec codecTracker
	// Media clock (seconds) for the buffer span and Realtime pacing;
	// started once a packet was read.
	media   float64
	started bool
	// Realtime pacing base.
	paceSet   bool
	paceWall  time.Time
	paceMedia float64
	// Unused InputOptions were reported.
	optsChecked bool
	// A looped input's truncation was reported.
	truncWarned bool
}

// tsRepair fills missing timestamps and offsets loop passes so PTS/DTS keep
// increasing across them.
type tsRepair struct {
	// PTS/DTS offset for the current pass, and where the previous pass
	// ended (in the stream time base).
	offset     int64
	newPass    bool
	lastOutDTS int64
	lastDur    int64
	haveLast   bool
	lastTB     astiav.Rational
	prevRawDTS int64 // per connection; NoPtsValue at its start
}

// open starts a connection whose stream time base is tb.
func (r *tsRepair) open(tb astiav.Rational) {
	if r.haveLast && r.lastTB != tb {
		r.haveLast = false // a different time base: offsets do not carry
	}
	r.lastTB = tb
	r.prevRawDTS = astiav.NoPtsValue
}

// reconnect starts a new timeline: live timestamps are not offset.
func (r *tsRepair) reconnect() { r.haveLast, r.newPass, r.offset = false, false, 0 }

// repair returns a packet's output PTS/DTS and duration, and the DTS step
// from the previous packet (false for the first packet, or after a
// reconnect).
func (r *tsRepair) repair(pts, dts, dur int64) (outPTS, outDTS, outDur, step int64, stepOK bool) {
	if dts == astiav.NoPtsValue {
		dts = pts
	}
	if dts == astiav.NoPtsValue {
		if r.prevRawDTS != astiav.NoPtsValue {
			dts = r.prevRawDTS + max(r.lastDur, 1)
		} else {
			dts = 0
		}
	}
	if pts == astiav.NoPtsValue {
		pts = dts
	}
	if dur <= 0 && r.prevRawDTS != astiav.NoPtsValue && dts > r.prevRawDTS {
		dur = dts - r.prevRawDTS
	}
	r.prevRawDTS = dts
	if r.newPass {
		r.newPass = false
		if r.haveLast {
			r.offset = r.lastOutDTS + max(r.lastDur, 1) - dts
		}
	}
	outDTS, outPTS = dts+r.offset, pts+r.offset
	step, stepOK = outDTS-r.lastOutDTS, r.haveLast
	if dur > 0 {
		r.lastDur = dur
	}
	r.lastOutDTS, r.haveLast = outDTS, true
	return outPTS, outDTS, dur, step, stepOK
}

type sessionResult struct {
	eof     bool  // the input ended cleanly
	packets int64 // packets accepted in this session
	// read counts the video packets read (accepted or skipped) and
	// partial those the demuxer flagged corrupt (cut short); listed is
	// the video packet count the container states (0: unknown), to tell
	// a truncated file at its end.
	read, partial, listed int64
}

// truncated reports whether an input that ended cleanly delivered fewer
// video packets than its container lists, or a partial one.
func (r sessionResult) truncated() bool {
	return r.eof && (r.partial > 0 || (r.listed > 0 && r.read < r.listed))
}

// readLoop opens the input, reads it, and reopens it on failure or end as
// the config says. It returns nil when ctx is done or a non-looping file
// ended, and an error for a file that cannot be read.
func (in *Ingest) readLoop(ctx context.Context, q *queue, wd *watchdog) error {
	st := &readState{}
	// A file read as fast as possible follows its own clock only.
	st.clock.free = in.cfg.isFile() && !in.cfg.Realtime
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
		if res.truncated() && !st.truncWarned {
			// A file cut short (a copy or an upload that did not finish):
			// FFmpeg reads what is there and reports a clean end.
			st.truncWarned = in.cfg.Loop // a looped file: once, not each pass
			msg := fmt.Sprintf("input ended early: read %d of the %d video packets its container lists, %d of them partial (truncated file?)",
				res.read, res.listed, res.partial)
			if res.listed == 0 {
				msg = fmt.Sprintf("input ended early: %d of %d video packets read were partial (truncated file?)", res.partial, res.read)
			}
			in.setErr(fmt.Errorf("%s: %s", input, msg))
			in.log.Warn(msg, "input", input, "read", res.read, "listed", res.listed, "partial", res.partial,
				"lost", max(0, res.listed-res.read))
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
			st.ts.newPass = true
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
		// Packets were lost between the connections (sent while the
		// input was stalled or away, or before the new connection's
		// first keyframe): skip a number, so readers see a gap
		// (media.NumberGap) and never decode across the break.
		if res.packets > 0 {
			in.number++
		}
		// A new connection starts a new timeline: pace from its first
		// packet, and do not offset live timestamps.
		st.paceSet = false
		st.ts.reconnect()
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

// session runs one connection: open and probe the input, then read it
// until the end, an error, or cancel.
func (in *Ingest) session(ctx context.Context, q *queue, wd *watchdog, st *readState) (res sessionResult, err error) {
	// Cancel interrupts any blocking call now; Free waits for a running
	// callback so nothing outlives the session.
	intr, err := avin.Alloc(ctx)
	if err != nil {
		return res, err
	}
	defer intr.Free()
	wd.attach(intr)
	defer wd.detach()
	fail := func(op string, err error) error {
		switch intr.Reason() {
		case avin.ReasonCancel:
			return ctx.Err()
		case reasonTimeout:
			return fmt.Errorf("%s %s: no data for %v (input dead?)", op, in.input, in.cfg.ReadTimeout)
		}
		return fmt.Errorf("%s %s: %w", op, in.input, err)
	}

	newPass := st.ts.newPass
	vs, err := in.open(intr, wd, st, fail)
	if err != nil {
		return res, err
	}
	defer intr.FC.CloseInput()
	cp := vs.CodecParameters()
	tb := vs.TimeBase()
	st.ts.open(tb)
	if st.codec.open(cp) {
		in.log.Info("codec parameters changed", "codec", st.codec.cur.Name, "width", st.codec.cur.Width, "height", st.codec.cur.Height)
	}
	defer st.codec.close()
	in.connected.Store(true)
	lv := slog.LevelInfo
	if newPass {
		lv = slog.LevelDebug // a loop restart, not news
	}
	cur := st.codec.cur
	in.log.Log(ctx, lv, "input open", "input", in.input, "codec", cur.Name, "width", cur.Width, "height", cur.Height,
		"pix_fmt", cur.PixFmt, "extradata", len(cur.Extradata))

	ab, err := in.newAnnexBFilter(ctx, cp, tb)
	if err != nil {
		return res, err
	}
	defer ab.free()
	aw := in.newAudioWriter(intr.FC, ab != nil)
	var vref videoRef

	pkt := astiav.AllocPacket()
	if pkt == nil {
		return res, errors.New("allocating a packet failed")
	}
	defer pkt.Free()
	vidx := vs.Index()
	res.listed = vs.NbFrames()
	gotKey := false
	for {
		wd.arm()
		err := intr.FC.ReadFrame(pkt)
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
			aw.write(ctx, pkt, vref)
			pkt.Unref()
			continue
		}
		key := pkt.Flags().Has(astiav.PacketFlagKey)
		res.read++
		if pkt.Flags().Has(astiav.PacketFlagCorrupt) {
			res.partial++
		}
		st.codec.sideData(pkt)
		if !gotKey && !key {
			// Nothing before a connection's first keyframe can be decoded.
			in.skipped.Add(1)
			pkt.Unref()
			continue
		}
		gotKey = true
		// The audio is placed against the demuxer's own timestamps (not
		// the repaired, loop-offset ones), which both streams share.
		rawSec := float64(pkt.Dts()) * tb.Float64()
		p := in.packet(pkt, key, cp, tb, st)
		if ab != nil {
			var cerr error
			if p.Data, cerr = ab.convert(pkt); cerr != nil {
				pkt.Unref()
				return res, cerr
			}
		}
		pkt.Unref()
		if err := in.pace(ctx, st); err != nil {
			return res, err
		}
		now := in.cfg.Now()
		ms, why := st.clock.stamp(p.DTS, p.TimeBase, now)
		if why == anchorJump || why == anchorDrift {
			in.log.Info("capture clock re-anchored to the wall clock", "reason", why, "dts", p.DTS,
				"off_by", (time.Duration(ms-now.UnixMilli()) * time.Millisecond).String())
		}
		p.Timestamp = ms
		vref = videoRef{sec: rawSec, ms: ms, ok: true}
		in.number++
		p.Number = in.number
		if key {
			in.keyNumber++
		}
		p.KeyframeNumber = in.keyNumber
		in.packets.Add(1)
		if key {
			in.keyframes.Add(1)
		}
		in.lastPacket.Store(now.UnixMilli())
		res.packets++
		if err := q.push(ctx, &item{pkt: p, codec: st.codec.cur, media: st.media}); err != nil {
			in.packets.Add(-1) // never queued (cancelled while waiting for room)
			if key {
				in.keyframes.Add(-1)
			}
			return res, err
		}
	}
}

// open opens the input and probes its streams, returning the video stream.
// A new connection (not a loop pass) restarts the capture clock.
func (in *Ingest) open(intr *avin.Input, wd *watchdog, st *readState, fail func(string, error) error) (*astiav.Stream, error) {
	fc := intr.FC
	dict, err := avin.Dictionary(in.openOptions())
	if err != nil {
		return nil, err
	}
	defer dict.Free()
	var ifmt *astiav.InputFormat
	if in.cfg.Format != "" {
		ifmt = astiav.FindInputFormat(in.cfg.Format)
	}
	if in.cfg.Listen {
		in.log.Info("listening for a pusher", "input", in.input)
	} else {
		wd.arm() // waiting for a pusher is not bounded; connecting is
	}
	target := in.cfg.Input
	if in.ffInput != "" {
		target = in.ffInput // behind the RTMP gate
	}
	err = fc.OpenInput(target, ifmt, dict)
	wd.disarm()
	if err != nil {
		return nil, fail("open", err)
	}
	ok := false
	defer func() {
		if !ok {
			fc.CloseInput()
		}
	}()
	if !st.optsChecked {
		st.optsChecked = true
		for k := range in.cfg.InputOptions {
			if dict.Get(k, nil, astiav.NewDictionaryFlags()) != nil {
				in.log.Warn("input option not used by FFmpeg", "option", k)
			}
		}
	}
	if !st.ts.newPass {
		// A live input's first packets are read from here on, and the
		// probe may hand them out up to its analyzeduration later: anchor
		// the capture clock at the probe's start. A file's clock starts at
		// its first packet.
		var at time.Time
		if !in.cfg.isFile() {
			at = in.cfg.Now()
		}
		st.clock.restart(at)
	}
	wd.armFor(in.probeAllowance())
	err = fc.FindStreamInfo(nil)
	wd.disarm()
	if err != nil {
		return nil, fail("probe", err)
	}
	vs := avin.VideoStream(fc)
	if vs == nil {
		return nil, fmt.Errorf("%s: %w", in.input, ErrNoVideo)
	}
	ok = true
	return vs, nil
}

// packet builds the cache packet for pkt (all but its capture time and
// numbers), repairing its timestamps, applying codec changes at keyframes
// and advancing the media clock.
func (in *Ingest) packet(pkt *astiav.Packet, key bool, cp *astiav.CodecParameters, tb astiav.Rational, st *readState) *cache.Packet {
	data := pkt.Data() // a Go copy of the packet bytes (C.GoBytes)
	if key && st.codec.keyframe(cp, data) {
		c := st.codec.cur
		in.log.Info("codec parameters changed", "codec", c.Name, "width", c.Width, "height", c.Height)
	}
	pts, dts, dur, step, stepOK := st.ts.repair(pkt.Pts(), pkt.Dts(), pkt.Duration())
	tbf := tb.Float64()
	// Media clock: advance by the DTS step; a jump (reconnect, bad
	// timestamps) advances by one packet duration instead.
	if st.started {
		adv := float64(dur) * tbf
		if d := float64(step) * tbf; stepOK && d >= 0 && d < MaxClockStep.Seconds() {
			adv = d
		}
		st.media += adv
	}
	st.started = true
	cur := st.codec.cur
	p := &cache.Packet{
		Keyframe: key,
		Data:     data,
		PTS:      pts, DTS: dts,
		TimeBase: tbf,
		Width:    cur.Width, Height: cur.Height,
		FrameType: "P",
		Corrupt:   pkt.Flags().Has(astiav.PacketFlagCorrupt),
		DeviceID:  in.cfg.Camera,
		CodecName: cur.Name,
		PixFmt:    cur.PixFmt,
	}
	if key {
		p.FrameType = "I"
		p.Extradata = cur.Extradata
	}
	return p
}

// pace waits, for a Realtime input, until the packet's media time has
// come on the wall clock (like ffmpeg -re).
func (in *Ingest) pace(ctx context.Context, st *readState) error {
	if !in.cfg.Realtime {
		return nil
	}
	if !st.paceSet {
		st.paceSet, st.paceWall, st.paceMedia = true, time.Now(), st.media
	}
	target := st.paceWall.Add(time.Duration((st.media - st.paceMedia) * float64(time.Second)))
	if !sleep(ctx, time.Until(target)) {
		return ctx.Err()
	}
	return nil
}
