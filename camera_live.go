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
	// fed counts the packets handed to the decoder; done those it is
	// through with. fed > done while a packet is being decoded: a newer
	// frame is a decode away (WaitLatest waits for it).
	fed, doneN uint64
	waits      uint64 // WaitLatest calls that waited for a packet in flight
	testFeed   func() // tests: called with the packet counted in flight, before its decode
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
		wake: make(chan struct{}), lastUse: time.Now()}
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
			if err := f.feed(ctx, s, kf); err != nil {
				f.setErr(err)
				return
			}
			after, positioned, catching = kf.ID, true, true
		}
		block := time.Second
		if catching {
			block = 0 // the first catch-up reads what is there, then reports synced
		}
		pkts, err := c.cl.cache.ReadAfter(ctx, c.id, after, followPage, block)
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
		if len(pkts) == 0 {
			if catching {
				catching = false
				syncOnce()
			}
			continue
		}
		// Behind by more than a GOP: what precedes the newest keyframe of
		// the page is stale, so it is not decoded.
		for k := len(pkts) - 1; k > 0; k-- {
			if pkts[k].Keyframe {
				c.jumps.Add(1)
				s.Jump()
				pkts = pkts[k:]
				break
			}
		}
		for _, p := range pkts {
			if err := f.feed(ctx, s, p); err != nil {
				f.setErr(err)
				return
			}
		}
		after = pkts[len(pkts)-1].ID
		if catching && len(pkts) < followPage {
			catching = false
			syncOnce()
		}
	}
}

// feed decodes p, keeping its frame (f.keep), and marks it in flight
// meanwhile: fed is counted before the decode starts, doneN after it ends,
// whether or not the packet made a newer frame.
func (f *follower) feed(ctx context.Context, s *decode.Session, p cache.Packet) error {
	f.mu.Lock()
	f.fed++
	hook := f.testFeed
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	err := s.Feed(ctx, p, f.keep)
	f.mu.Lock()
	f.doneN = f.fed
	f.notify()
	f.mu.Unlock()
	return err
}

// waitInFlight waits until the packet the follower is decoding now (if
// any) is decoded: the frame it makes is newer than any held, and at most
// one decode away. It waits for that packet only, not for those read after
// it, and returns early if the follower stops or ctx ends.
func (f *follower) waitInFlight(ctx context.Context) error {
	f.mu.Lock()
	target := f.fed
	if f.doneN < target {
		f.waits++
	}
	for f.doneN < target {
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
// inFlight it first waits for the packet being decoded at the time of the
// call, if any (WaitLatest).
func (c *Camera) latestLive(ctx context.Context, inFlight bool) (*ChImage, <-chan struct{}, error) {
	f := c.follow()
	select {
	case <-f.synced:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	if inFlight {
		if err := f.waitInFlight(ctx); err != nil {
			return nil, nil, err
		}
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
