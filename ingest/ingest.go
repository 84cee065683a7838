package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/avin"
)

// Errors Run can return, testable with errors.Is.
var (
	// ErrNoVideo: the input has no video stream (or no video packet).
	ErrNoVideo = errors.New("no video stream")
	// ErrRunning: Run was called while the same Ingest is running.
	ErrRunning = errors.New("ingest already running")
)

// Ingest streams one camera into a cache. Create it with New; Run it once
// at a time (it may be run again after Run returns; counters carry on).
// Stats is safe to call at any time from any goroutine.
type Ingest struct {
	c     cache.Cache
	cfg   Config
	log   *slog.Logger
	input string // cfg.Input without its password, for logs and errors
	// ffInput is what FFmpeg opens when it is not cfg.Input: the loopback
	// URL behind the RTMP gate. Set by Run before reading.
	ffInput string

	running atomic.Bool

	packets, keyframes, written, dropped, skipped atomic.Int64
	reconnects, loops, codecWrites, buffered      atomic.Int64
	cacheErrors, refused                          atomic.Int64
	audioWritten, audioDropped                    atomic.Int64
	connected                                     atomic.Bool
	lastPacket                                    atomic.Int64 // unix ms, wall clock (Config.Now)
	lastErr                                       atomic.Pointer[string]
	// fatal is the error that ends Run (a cache refusing a file's
	// writes); stopRead cancels the reader for it.
	fatal         atomic.Pointer[error]
	stopRead      context.CancelFunc
	refusedLogged atomic.Bool

	// Packet numbering, owned by the reading goroutine.
	number, keyNumber int64
}

// Stats are an Ingest's counters since New.
type Stats struct {
	// Packets is the number of video packets read and accepted (from the
	// first keyframe of each connection on), whether written or dropped.
	Packets int64
	// Keyframes is the number of accepted keyframe packets.
	Keyframes int64
	// Written is the number of packets appended to the cache.
	Written int64
	// Dropped is the number of packets dropped because the buffer was
	// over Config.Buffer, with the rest of their GOPs (or because the
	// flush after cancel timed out).
	Dropped int64
	// Skipped is the number of video packets read before the first
	// keyframe of a connection (not written).
	Skipped int64
	// Reconnects counts reopenings of a live input after it failed, ended
	// or went silent (not loop restarts).
	Reconnects int64
	// Loops counts restarts of a looped input.
	Loops int64
	// CodecWrites counts successful SetCodec calls.
	CodecWrites int64
	// CacheErrors counts failed cache writes (each retry counts).
	CacheErrors int64
	// Buffered is the number of packets waiting for the cache right now.
	Buffered int64
	// Connected is true while an input is open.
	Connected bool
	// Refused counts clients the RTMP listener turned away (Listen on
	// rtmp://): a wrong app, stream name or key, a bad handshake, nothing
	// sent within ReadTimeout, or a second pusher while one is connected.
	Refused int64
	// LastPacket is the wall-clock read time of the newest packet (zero
	// before the first).
	LastPacket time.Time
	// LastError is the most recent input or cache error ("" if none).
	LastError string
	// AudioWritten and AudioDropped count the audio frames written to an
	// AudioCache and those it did not take in time (see AudioCache).
	AudioWritten, AudioDropped int64
}

// New validates cfg and returns an Ingest writing into c. It does not open
// the input; Run does.
func New(c cache.Cache, cfg Config) (*Ingest, error) {
	if c == nil {
		return nil, errors.New("ingest: nil cache")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.InputOptions = maps.Clone(cfg.InputOptions)
	return &Ingest{c: c, cfg: cfg, log: cfg.Logger.With("camera", cfg.Camera), input: avin.Redact(cfg.Input)}, nil
}

// Camera is the camera id.
func (in *Ingest) Camera() string { return in.cfg.Camera }

// Stats returns the counters; safe while Run is running.
func (in *Ingest) Stats() Stats {
	s := Stats{
		Packets: in.packets.Load(), Keyframes: in.keyframes.Load(), Written: in.written.Load(),
		Dropped: in.dropped.Load(), Skipped: in.skipped.Load(), Reconnects: in.reconnects.Load(),
		Loops: in.loops.Load(), CodecWrites: in.codecWrites.Load(), CacheErrors: in.cacheErrors.Load(),
		Buffered: in.buffered.Load(), Connected: in.connected.Load(), Refused: in.refused.Load(),
		AudioWritten: in.audioWritten.Load(), AudioDropped: in.audioDropped.Load(),
	}
	if ms := in.lastPacket.Load(); ms != 0 {
		s.LastPacket = time.UnixMilli(ms)
	}
	if e := in.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}

func (in *Ingest) setErr(err error) {
	s := err.Error()
	in.lastErr.Store(&s)
}

// Run reads the input and writes its video packets into the cache until
// ctx is done (it returns nil) or, for a file input without Loop, until the
// end of the file once everything is written (nil). Live inputs are
// reconnected forever, so Run returns an error only for a file that cannot
// be opened or read (or has no video), or whose writes the cache refuses
// for good (cache.ErrRefused: no write permission on the camera's keys);
// never because a pusher disconnected or the cache is down. Buffered packets are flushed before
// Run returns (for at most Config.FlushTimeout after cancel). Every
// goroutine Run starts has exited when it returns.
func (in *Ingest) Run(ctx context.Context) error {
	if !in.running.CompareAndSwap(false, true) {
		return fmt.Errorf("ingest: camera %q: %w", in.cfg.Camera, ErrRunning)
	}
	defer in.running.Store(false)

	dropMode := !in.cfg.isFile() || in.cfg.Realtime
	q := newQueue(in.cfg.Buffer, dropMode, &in.buffered, in.onDrop)

	// The writer outlives ctx by up to FlushTimeout so the buffer can be
	// flushed; wcancel ends it.
	wctx, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer wcancel()
	// The writer ends the reading with a cause when the cache refuses
	// every write for good (cache.ErrMisconfigured).
	ictx, fatal := context.WithCancelCause(ctx)
	defer fatal(nil)
	rctx, rcancel := context.WithCancel(ictx)
	defer rcancel()
	// The reader's context: the writer cancels it when the cache refuses
	// a file's writes for good (see refusedFatal).
	lctx, lcancel := context.WithCancel(ictx)
	defer lcancel()
	in.fatal.Store(nil)
	in.stopRead = lcancel

	var wg sync.WaitGroup
	writerDone := make(chan struct{})
	wd := newWatchdog(in.cfg.ReadTimeout)
	in.ffInput = ""
	if in.cfg.Listen && avin.Scheme(in.cfg.Input) == "rtmp" {
		g, inner, err := startRTMPGate(in.cfg.Input, in.cfg.StreamKey, in.cfg.ReadTimeout, in.cfg.ReadTimeout+in.cfg.BackoffMax,
			in.log, func() { in.refused.Add(1) })
		if err != nil {
			return fmt.Errorf("ingest: camera %q: listen on %s: %w", in.cfg.Camera, in.input, err)
		}
		in.ffInput = inner
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.run(rctx)
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(writerDone)
		in.writeLoop(wctx, q, fatal)
	}()
	go func() {
		defer wg.Done()
		wd.run(rctx)
	}()

	err := in.readLoop(lctx, q, wd)
	rcancel()
	q.close()

	// Flush: wait for the writer to drain the queue; once ctx is done, give
	// it FlushTimeout more.
	select {
	case <-writerDone:
	case <-ctx.Done():
		if b := in.buffered.Load(); b > 0 {
			in.log.Info("flushing buffered packets", "packets", b, "timeout", in.cfg.FlushTimeout)
		}
		t := time.NewTimer(in.cfg.FlushTimeout)
		select {
		case <-writerDone:
		case <-t.C:
			wcancel()
		}
		t.Stop()
	}
	wg.Wait()
	if in.fatal.Load() != nil { // what the reader queued after the writer gave up
		n := q.clear()
		in.buffered.Add(-int64(n))
		in.dropped.Add(int64(n))
	}
	st := in.Stats()
	in.log.Info("ingest stopped", "packets", st.Packets, "written", st.Written, "dropped", st.Dropped,
		"reconnects", st.Reconnects, "loops", st.Loops)
	if f := in.fatal.Load(); f != nil {
		return *f
	}
	if ctx.Err() != nil {
		return nil
	}
	if cause := context.Cause(ictx); cause != nil && ictx.Err() != nil {
		return cause
	}
	return err
}

func (in *Ingest) onDrop(n int) {
	total := in.dropped.Add(int64(n))
	// Log the first drop of each thousand, not every one.
	if total-int64(n) == 0 || (total-int64(n))/1000 != total/1000 {
		in.log.Warn("cache too slow or down: dropping oldest buffered packets", "dropped_total", total, "buffer", in.cfg.Buffer)
	}
}

// writeLoop appends queued packets in order, retrying a failing cache with
// a capped backoff. It returns when the queue is closed and drained, or ctx
// (the flush deadline) ends, dropping what is left. A write refused for
// good (cache.ErrMisconfigured: a Redis Cluster node dialled as one
// server) drops what is left and calls fatal, which ends Run with it.
func (in *Ingest) writeLoop(ctx context.Context, q *queue, fatal context.CancelCauseFunc) {
	var written *codecInfo // the codec generation the cache holds
	bo := backoff{min: 20 * time.Millisecond, max: 2 * time.Second}
	failing := false
	var failedAt time.Time
	for {
		it, ok := q.pop(ctx)
		if !ok {
			if ctx.Err() != nil {
				in.dropRest(q)
			}
			return
		}
		for {
			err := in.writeItem(ctx, it, &written)
			if err == nil {
				in.written.Add(1)
				in.buffered.Add(-1)
				if failing {
					failing = false
					in.log.Info("cache writes recovered", "down_for", time.Since(failedAt).Round(time.Millisecond),
						"buffered", in.buffered.Load(), "dropped_total", in.dropped.Load())
				}
				bo.reset()
				break
			}
			it.tries++
			in.cacheErrors.Add(1)
			in.setErr(err)
			if errors.Is(err, cache.ErrMisconfigured) {
				in.log.Error("cache refuses every write; stopping", "err", err)
				in.buffered.Add(-1)
				in.onDrop(1)
				in.dropRest(q)
				fatal(fmt.Errorf("ingest: camera %q: %w", in.cfg.Camera, err))
				return
			}
			if errors.Is(err, cache.ErrRefused) && in.refusedFatal(err) {
				// A file would wait for the cache forever: end Run (what
				// is buffered is counted dropped; Run's error says why).
				n := 1 + q.clear()
				in.buffered.Add(-int64(n))
				in.dropped.Add(int64(n))
				return
			}
			if !failing {
				failing, failedAt = true, time.Now()
				in.log.Warn("cache write failed; buffering packets in memory", "err", err, "buffer", in.cfg.Buffer)
				// The cache may come back empty (a restarted Redis without
				// persistence): write the codec info again first.
				written = nil
			}
			if ctx.Err() != nil {
				in.buffered.Add(-1)
				in.onDrop(1)
				in.dropRest(q)
				return
			}
			if q.expired(it) {
				// Give up on it, and on the rest of its GOP, which
				// cannot be decoded without it.
				n := q.dropGOP()
				in.buffered.Add(-int64(1 + n))
				in.onDrop(1 + n)
				break
			}
			sleep(ctx, bo.next()) // the next attempt sees a cancelled ctx
		}
	}
}

// refusedFatal handles a cache that refuses writes for good
// (cache.ErrRefused: no permission on the camera's keys, a key of another
// type). For a file it records the error that Run returns and stops the
// reader, and reports true. A live input goes on (its buffer drops what
// the cache does not take, and the cache may be fixed meanwhile); the
// refusal is logged at Error level once.
func (in *Ingest) refusedFatal(err error) bool {
	err = fmt.Errorf("ingest: camera %q: the cache refuses writes: %w", in.cfg.Camera, err)
	if in.cfg.isFile() {
		in.fatal.Store(&err)
		in.stopRead()
		return true
	}
	if in.refusedLogged.CompareAndSwap(false, true) {
		in.log.Error("the cache refuses writes; packets are dropped until it accepts them", "err", err)
	}
	return false
}

// dropRest drops what is left in the queue after the flush deadline.
func (in *Ingest) dropRest(q *queue) {
	if n := q.clear(); n > 0 {
		in.buffered.Add(-int64(n))
		in.onDrop(n)
		in.log.Warn("flush timed out; dropped buffered packets", "packets", n)
	}
}

func (in *Ingest) writeItem(ctx context.Context, it *item, written **codecInfo) error {
	if it.codec != nil && !it.codec.same(*written) {
		if err := in.c.SetCodec(ctx, in.cfg.Camera, it.codec.Codec); err != nil {
			return fmt.Errorf("set codec: %w", err)
		}
		*written = it.codec
		in.codecWrites.Add(1)
	}
	if it.tries > 0 {
		// A failed write may have reached the cache (the reply was lost):
		// do not write it twice.
		if dup, err := in.alreadyWritten(ctx, it.pkt); err != nil {
			return err
		} else if dup {
			return nil
		}
	}
	if _, err := in.c.Append(ctx, in.cfg.Camera, it.pkt); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	return nil
}

func (in *Ingest) alreadyWritten(ctx context.Context, p *cache.Packet) (bool, error) {
	last, err := in.c.RevRange(ctx, in.cfg.Camera, cache.MaxID, cache.MinID, 1)
	if errors.Is(err, cache.ErrUnknownCamera) || errors.Is(err, cache.ErrEmpty) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check last entry: %w", err)
	}
	return len(last) == 1 && last[0].Number == p.Number && last[0].Timestamp == p.Timestamp &&
		len(last[0].Data) == len(p.Data), nil
}

// backoff is a capped exponential delay.
type backoff struct{ min, max, cur time.Duration }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx is done (false).
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ValidateAll checks a set of cameras for one process: each config is valid
// (see Config.Validate), camera ids are unique, and listening cameras have
// distinct host:port (an FFmpeg listener serves one pusher).
func ValidateAll(cfgs []Config) error {
	if len(cfgs) == 0 {
		return errors.New("ingest: no camera configured")
	}
	cams := map[string]bool{}
	listens := map[string]string{}
	for _, cfg := range cfgs {
		if err := cfg.Validate(); err != nil {
			return err
		}
		if cams[cfg.Camera] {
			return fmt.Errorf("ingest: camera %q configured twice", cfg.Camera)
		}
		cams[cfg.Camera] = true
		if cfg.Listen {
			if u, err := url.Parse(cfg.Input); err == nil && u.Host != "" {
				hp := strings.ToLower(u.Scheme + "://" + u.Host)
				if other, ok := listens[hp]; ok {
					return fmt.Errorf("ingest: cameras %q and %q both listen on %s; give each its own port", other, cfg.Camera, u.Host)
				}
				listens[hp] = cfg.Camera
			}
		}
	}
	return nil
}

// RunAll runs one Ingest per config into c (several cameras in one
// process) until ctx is done (nil) or every input has ended. The configs
// are checked with ValidateAll first. The first Run error cancels the
// other cameras and is returned.
func RunAll(ctx context.Context, c cache.Cache, cfgs []Config) error {
	ins, err := NewAll(c, cfgs)
	if err != nil {
		return err
	}
	return RunIngests(ctx, ins)
}

// NewAll checks cfgs with ValidateAll and returns one Ingest per config,
// for a caller that reads their Stats while RunIngests runs them.
func NewAll(c cache.Cache, cfgs []Config) ([]*Ingest, error) {
	if err := ValidateAll(cfgs); err != nil {
		return nil, err
	}
	ins := make([]*Ingest, 0, len(cfgs))
	for _, cfg := range cfgs {
		in, err := New(c, cfg)
		if err != nil {
			return nil, err
		}
		ins = append(ins, in)
	}
	return ins, nil
}

// RunIngests runs every ingest until ctx is done (nil) or every input has
// ended. The first Run error cancels the others and is returned.
func RunIngests(ctx context.Context, ins []*Ingest) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, in := range ins {
		g.Go(func() error { return in.Run(gctx) })
	}
	return g.Wait()
}
