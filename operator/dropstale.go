package operator

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/chryscloud/chrysalis-go/flow"
)

// DropStale keeps a slow consumer on fresh frames.
//
// With MaxAge, a frame whose age (wall clock now minus img.Time) exceeds
// MaxAge is dropped: on arrival, and also while it waits for the consumer
// (it is never handed over older than MaxAge, give or take a timer tick).
//
// With KeepNewest, DropStale holds a single frame: whenever several are
// queued in in it drains them without blocking and keeps only the newest,
// and while it waits for the consumer to take that frame it keeps replacing
// it with newer arrivals. The consumer therefore gets a frame at most about
// one frame interval old, whatever its own speed. Put it directly in front
// of the slow node: frames that already sit in the buffer of a downstream
// Block edge age there (a drop-oldest edge, the default, keeps it fresh).
//
// Dropped frames are released and counted. KeepNewest treats its input as
// one stream: give each camera its own DropStale.
type DropStale struct {
	// MaxAge drops frames older than this. 0 (default) disables the age
	// check.
	MaxAge time.Duration
	// KeepNewest keeps only the newest queued frame. Default false: every
	// frame younger than MaxAge is passed, in order, waiting for the
	// consumer as long as it takes.
	KeepNewest bool

	passed, stale, superseded atomic.Int64
}

var _ flow.Operator = (*DropStale)(nil)

// Passed counts the frames sent on.
func (d *DropStale) Passed() int64 { return d.passed.Load() }

// Stale counts the frames dropped for exceeding MaxAge.
func (d *DropStale) Stale() int64 { return d.stale.Load() }

// Superseded counts the frames dropped because a newer one arrived
// (KeepNewest).
func (d *DropStale) Superseded() int64 { return d.superseded.Load() }

// Dropped is Stale + Superseded.
func (d *DropStale) Dropped() int64 { return d.stale.Load() + d.superseded.Load() }

// fresh reports whether img is young enough, releasing and counting it
// when it is not.
func (d *DropStale) fresh(img flow.Image) bool {
	if d.MaxAge > 0 && time.Since(img.Time) > d.MaxAge {
		img.Release()
		d.stale.Add(1)
		return false
	}
	return true
}

// Run implements flow.Operator.
func (d *DropStale) Run(ctx context.Context, in <-chan flow.Image, out chan<- flow.Image) error {
	var pending flow.Image
	defer func() { pending.Release() }() // nil-safe
	expire := time.NewTimer(time.Hour)
	expire.Stop()
	defer expire.Stop()
	var expireC <-chan time.Time
	inC := in // nil once in is closed
	// hold makes img the pending frame, replacing (and releasing) the
	// previous one, and arms its expiry.
	hold := func(img flow.Image) {
		if !d.fresh(img) {
			return
		}
		if pending != nil {
			pending.Release()
			d.superseded.Add(1)
		}
		pending = img
		if d.MaxAge > 0 {
			expire.Reset(d.MaxAge - time.Since(img.Time))
			expireC = expire.C
		}
	}
	for {
		if pending == nil {
			if inC == nil {
				return nil
			}
			expireC = nil
			img, ok, err := flow.Recv(ctx, inC)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			hold(img)
			if pending == nil {
				continue
			}
		}
		if d.KeepNewest {
			// Drain what is queued without blocking; keep the newest.
		drain:
			for inC != nil {
				select {
				case img, ok := <-inC:
					if !ok {
						inC = nil
						break drain
					}
					hold(img)
				default:
					break drain
				}
			}
			if pending == nil {
				continue
			}
		}
		var newer <-chan flow.Image
		if d.KeepNewest {
			newer = inC
		}
		select {
		case out <- pending:
			pending = nil
			d.passed.Add(1)
		case img, ok := <-newer:
			if !ok {
				inC = nil
				continue
			}
			hold(img)
		case <-expireC:
			if left := d.MaxAge - time.Since(pending.Time); left > 0 {
				expire.Reset(left) // woke early (clock granularity)
				continue
			}
			expireC = nil
			pending.Release()
			pending = nil
			d.stale.Add(1)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
