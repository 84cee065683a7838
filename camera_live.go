package chrysalis

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/av"
	"github.com/chryscloud/chrysalis-go/internal/decode"
)

// DefaultLiveIdle is how long a Camera's live follower keeps decoding after
// the last Latest or WaitLatest call (CameraOptions.LiveIdle).
const DefaultLiveIdle = 10 * time.Second

// followPage is how many packets the follower reads per cache round trip.
const followPage = 256

// frameKey orders frames for "newer": presentation time on the cache
// clock, then the packet's id (frames whose packets share a millisecond).
type frameKey struct {
	ms uint64
	id cache.ID
}

func (k frameKey) after(o frameKey) bool {
	return k.ms > o.ms || (k.ms == o.ms && k.id.Compare(o.id) > 0)
}

// follower decodes a camera's stream ahead of its reader: one goroutine
// reads every new packet as it arrives (a blocking cache read), feeds it to
// the decoder and keeps only the newest decoded frame, as a reference to
// the decoder's frame, unconverted. Latest then converts that frame and
// returns at once, instead of decoding the backlog of the reader's sleep.
// It stops when its Camera is closed or after LiveIdle without a read.
type follower struct {
	cam    *Camera
	cancel context.CancelFunc
	done   chan struct{}
	synced chan struct{} // closed once the first catch-up is done

	mu      sync.Mutex
	hold    av.FrameRef // the newest decoded frame
	holdP   cache.Packet
	holdKey frameKey
	has     bool
	err     error         // the last read error, cleared by a good read
	wake    chan struct{} // closed and replaced on every new frame, decoded packet or error
	lastUse time.Time
	// fed counts the packets read; doneN those decoded (or skipped as
	// stale). fed > doneN while a packet is being decoded or held back
	// for a batch: a newer frame is that far away (WaitLatest waits).
	fed, doneN uint64
	waits      uint64 // WaitLatest calls that waited for packets read before them
	// Batching (deferUntil): the last reader call, the intervals before
	// it (newest first), the call the last batch was for, the follower
	// asleep (leaving packets in the cache) and the way to wake it, the
	// decode time per packet and the packet interval (moving averages),
	// the last packet's stamp, the read-and-decode rounds done, batches
	// decoded and packets skipped as stale before a keyframe.
	lastRead, deferredFor time.Time
	gaps                  [3]time.Duration
	asleep                bool
	hurry                 chan struct{}
	decodeEst, pktEvery   time.Duration
	lastTS                int64
	cycles                uint64
	batches, skipped      uint64
	testFeed              func() // tests: called with the packet counted in flight, before its decode
}

// follow returns the camera's running follower, starting one if there is
// none (or the last one stopped idle).
func (c *Camera) follow() *follower {
	if f := c.follower; f != nil {
		select {
		case <-f.done:
		default:
			f.mu.Lock()
			f.lastUse = time.Now()
			f.mu.Unlock()
			return f
		}
		f.close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{cam: c, cancel: cancel, done: make(chan struct{}), synced: make(chan struct{}),
		wake: make(chan struct{}), lastUse: time.Now(),
		decodeEst: 10 * time.Millisecond, pktEvery: 40 * time.Millisecond, hurry: make(chan struct{}, 1)}
	c.follower = f
	go f.run(ctx)
	return f
}

// close stops the follower and waits for it.
func (f *follower) close() {
	f.cancel()
	<-f.done
}

// notify wakes WaitLatest; f.mu must be held.
func (f *follower) notify() {
	close(f.wake)
	f.wake = make(chan struct{})
}

func (f *follower) setErr(err error) {
	f.mu.Lock()
	if err != nil || f.err != nil {
		f.err = err
		f.notify()
	}
	f.mu.Unlock()
}

func (f *follower) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Since(f.lastUse) > f.cam.o.LiveIdle
}

// keep holds fr when it is newer than the frame held.
func (f *follower) keep(fr *av.Frame, p cache.Packet) error {
	k := frameKey{decode.PresentationMS(p), p.ID}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.has && !k.after(f.holdKey) {
		return nil // a B-frame displayed before the frame held
	}
	if err := f.hold.Ref(fr); err != nil {
		return err
	}
	f.holdP, f.holdKey, f.has = p, k, true
	f.notify()
	return nil
}

func (f *follower) run(ctx context.Context) {
	c := f.cam
	o := c.sessionOptions(c.o.LiveThreads)
	// Each packet is decoded alone as it arrives: on the decoder's thread,
	// so this goroutine parks instead of holding a cgo call (see
	// av.DecoderOptions.OffThread), unless the caller chose inline.
	o.OffThread = !c.o.LiveInline
	s := decode.New(o)
	defer close(f.done)
	defer func() {
		s.Close()
		f.mu.Lock()
		f.hold.Free()
		f.has = false
		f.mu.Unlock()
	}()
	syncOnce := sync.OnceFunc(func() { close(f.synced) })
	defer syncOnce()
	bo := 20 * time.Millisecond
	var after cache.ID
	positioned, catching := false, true
	// decodePage decodes a page of packets read after after and moves
	// after past them; false when a decode error ended the follower.
	decodePage := func(pkts []cache.Packet, batch bool) bool {
		// Behind by more than a GOP, or a batch with a keyframe: what
		// precedes the newest keyframe of the page is stale, so it is not
		// decoded.
		var stale uint64
		for k := len(pkts) - 1; k > 0; k-- {
			if pkts[k].Keyframe {
				c.jumps.Add(1)
				s.Jump()
				stale, pkts = uint64(k), pkts[k:]
				break
			}
		}
		f.mu.Lock()
		f.fed += uint64(len(pkts))
		f.skipped += stale
		if batch && len(pkts) > 1 {
			f.batches++
		}
		f.mu.Unlock()
		for _, p := range pkts {
			if err := f.feed(ctx, s, p); err != nil {
				f.setErr(err)
				return false
			}
		}
		if len(pkts) > 0 {
			after = pkts[len(pkts)-1].ID
		}
		f.mu.Lock()
		f.cycles++
		f.notify()
		f.mu.Unlock()
		return true
	}
	for ctx.Err() == nil && !f.idle() {
		if !positioned {
			// Start at the newest keyframe: older GOPs are stale.
			kf, err := c.cl.cache.KeyframeAtOrBefore(ctx, c.id, cache.MaxID)
			if errors.Is(err, cache.ErrNotFound) {
				err = c.emptyOr(ctx, nil) // ErrEmpty, or only a GOP's tail so far
			}
			if err != nil || kf.ID.IsZero() {
				f.setErr(err)
				syncOnce()
				if err != nil && !errors.Is(err, cache.ErrEmpty) && !errors.Is(err, cache.ErrUnknownCamera) {
					sleepCtx(ctx, bo)
					bo = min(2*bo, 2*time.Second)
					continue
				}
				if errors.Is(err, cache.ErrUnknownCamera) {
					sleepCtx(ctx, 250*time.Millisecond) // not there yet
					continue
				}
				// Wait for the next packet, then look again.
				var last cache.ID
				if st, err := c.cl.cache.Stats(ctx, c.id); err == nil {
					last = st.Last
				}
				_, _ = c.cl.cache.ReadAfter(ctx, c.id, last, 1, time.Second)
				continue
			}
			s.Jump()
			f.mu.Lock()
			f.fed++
			f.mu.Unlock()
			if err := f.feed(ctx, s, kf); err != nil {
				f.setErr(err)
				return
			}
			after, positioned, catching = kf.ID, true, true
		}
		block := time.Second
		batch := false
		if catching {
			block = 0 // the first catch-up reads what is there, then reports synced
		} else if dl, ok := f.deferUntil(); ok {
			// A steady reader's next call is far enough away: leave the
			// packets in the cache until shortly before it is due (or a
			// call hurries us), then decode them together.
			f.sleepUntil(ctx, dl)
			block, batch = 0, true
		}
		pkts, err := c.cl.cache.ReadAfter(ctx, c.id, after, followPage, block)
		if err == nil && !catching && !batch && len(pkts) > 0 {
			// A call was answered while this read waited: the packets
			// came after it, so they wait for the next call's batch
			// instead of being decoded alone now.
			if dl, ok := f.deferUntil(); ok {
				held := pkts
				f.sleepUntil(ctx, dl)
				var more []cache.Packet
				more, err = c.cl.cache.ReadAfter(ctx, c.id, held[len(held)-1].ID, followPage, 0)
				pkts, batch = append(held, more...), true
				if err != nil && ctx.Err() == nil {
					// Decode what was read; the error is reported below.
					if !decodePage(pkts, batch) {
						return
					}
					pkts = nil
				}
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.setErr(err)
			syncOnce()
			sleepCtx(ctx, bo)
			bo = min(2*bo, 2*time.Second)
			continue
		}
		bo = 20 * time.Millisecond
		f.setErr(nil)
		if !decodePage(pkts, batch) {
			return
		}
		if catching && len(pkts) < followPage {
			catching = false
			syncOnce()
		}
	}
}

// Batching. Decoding each packet alone as it arrives costs more CPU per
// packet than decoding a few back to back: the decoder starts cold every
// 40 ms (the same 720p packets took 2.1-2.5 ms each back to back and
// 2.7-2.9 ms each 40 ms apart on this machine), and every packet wakes
// the process. A reader that calls at a steady pace (a model taking
// about the same time per image, a ticker) lets the follower leave the
// packets that arrive just after a call in the cache and decode them
// together shortly before the next call is due, then each packet as it
// arrives until the call, so the reader still finds the newest frame
// decoded. A packet that arrives while the follower waits in its read
// after a call joins the next batch too (held in memory). Packets before
// a keyframe in such a batch are not decoded at all: a reader never sees
// them. A call earlier than predicted wakes the follower (WaitLatest then
// waits for the batch).

const (
	// batchMinPeriod is the shortest steady call interval that batches.
	batchMinPeriod = 120 * time.Millisecond
	// batchJitter is how much the last calls' intervals may differ.
	batchJitter = 20 * time.Millisecond
	// batchMargin is added to the batch's predicted decode time, with the
	// spread of the last intervals.
	batchMargin = 10 * time.Millisecond
)

// noteRead records a reader's call (Latest, or a WaitLatest's first look)
// for the batching prediction.
func (f *follower) noteRead(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.lastRead.IsZero() {
		copy(f.gaps[1:], f.gaps[:len(f.gaps)-1])
		f.gaps[0] = now.Sub(f.lastRead)
	}
	f.lastRead = now
}

// deferUntil reports whether the follower may leave new packets in the
// cache, and until when: the next call's predicted time less the batch's
// decode time and a margin. Only for a reader whose last calls came at a
// steady interval of at least batchMinPeriod, and only once per call.
func (f *follower) deferUntil() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lastRead.IsZero() || !f.lastRead.After(f.deferredFor) {
		return time.Time{}, false
	}
	lo, hi := f.gaps[0], f.gaps[0]
	for _, g := range f.gaps[1:] {
		lo, hi = min(lo, g), max(hi, g)
	}
	if lo < batchMinPeriod || hi-lo > batchJitter {
		return time.Time{}, false
	}
	n := lo/max(f.pktEvery, time.Millisecond) + 1 // packets in the batch
	dl := f.lastRead.Add(lo - batchMargin - (hi - lo) - n*f.decodeEst)
	if !time.Now().Before(dl) {
		return time.Time{}, false
	}
	f.deferredFor = f.lastRead
	return dl, true
}

// sleepUntil waits for dl, a reader's call (hurry) or the end of ctx,
// marked asleep meanwhile.
func (f *follower) sleepUntil(ctx context.Context, dl time.Time) {
	f.mu.Lock()
	select {
	case <-f.hurry: // a call that came while awake
	default:
	}
	f.asleep = true
	f.notify()
	f.mu.Unlock()
	t := time.NewTimer(time.Until(dl))
	select {
	case <-t.C:
	case <-f.hurry:
	case <-ctx.Done():
	}
	t.Stop()
	f.mu.Lock()
	f.asleep = false
	f.mu.Unlock()
}

// feed decodes p, a packet counted in fed when it was read, keeping its
// frame (f.keep); doneN counts it after, whether or not it made a newer
// frame.
func (f *follower) feed(ctx context.Context, s *decode.Session, p cache.Packet) error {
	f.mu.Lock()
	hook := f.testFeed
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	t0 := time.Now()
	err := s.Feed(ctx, p, f.keep)
	d := time.Since(t0)
	f.mu.Lock()
	f.decodeEst += (d - f.decodeEst) / 8
	if f.lastTS != 0 && p.Timestamp > f.lastTS {
		f.pktEvery += (time.Duration(p.Timestamp-f.lastTS)*time.Millisecond - f.pktEvery) / 8
	}
	f.lastTS = p.Timestamp
	f.doneN++
	f.notify()
	f.mu.Unlock()
	return err
}

// waitInFlight waits until every packet the follower had read at the time
// of the call is decoded; when it was asleep leaving packets in the cache
// for a batch, it wakes it and waits for that batch. The frame they make
// is newer than any held. It waits for those packets only, not for those
// read after them, and returns early if the follower stops or ctx ends.
func (f *follower) waitInFlight(ctx context.Context) error {
	f.mu.Lock()
	target, cycle := f.fed, f.cycles
	if f.asleep {
		cycle++
		f.wakeUp()
	}
	if f.doneN < target || f.cycles < cycle {
		f.waits++
		f.notify() // a change for whoever watches the follower (tests)
	}
	// A read error (an outage while the follower was asleep) ends the
	// wait: the caller gets the error, as without a batch.
	for (f.doneN < target || f.cycles < cycle) && f.err == nil {
		wake := f.wake
		f.mu.Unlock()
		select {
		case <-wake:
		case <-f.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
		f.mu.Lock()
	}
	f.mu.Unlock()
	return nil
}

// wakeUp ends the follower's batching sleep; f.mu must be held.
func (f *follower) wakeUp() {
	select {
	case f.hurry <- struct{}{}:
	default:
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// latestLive is Latest through the follower: the newest frame it decoded,
// converted now, when it is newer than the last one returned. With
// inFlight it first waits for the packets read and not yet decoded at the
// time of the call, if any (WaitLatest); without, it hurries them. first
// marks a caller's call, not WaitLatest's next look (batching's
// prediction).
func (c *Camera) latestLive(ctx context.Context, inFlight, first bool) (*ChImage, <-chan struct{}, error) {
	f := c.follow()
	if first {
		f.noteRead(time.Now())
	}
	select {
	case <-f.synced:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	if inFlight {
		if err := f.waitInFlight(ctx); err != nil {
			return nil, nil, err
		}
	} else {
		f.mu.Lock()
		if f.asleep {
			f.wakeUp()
		}
		f.mu.Unlock()
	}
	f.mu.Lock()
	wake := f.wake
	if !f.has || !f.holdKey.after(c.last) {
		err := f.err
		f.mu.Unlock()
		return nil, wake, err
	}
	// Take a reference of our own and convert outside the lock, so the
	// follower keeps decoding meanwhile.
	err := c.take.Ref(f.hold.Frame())
	p, k := f.holdP, f.holdKey
	f.mu.Unlock()
	if err != nil {
		return nil, wake, err
	}
	defer c.take.Unref()
	img, err := c.conv.Convert(c.take.Frame(), p)
	if err != nil {
		return nil, wake, err
	}
	c.last = k
	return img, wake, nil
}
