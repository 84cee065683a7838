package chrysalis

import (
	"context"
	"errors"
	"iter"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
)

// What operators that replay windows need from a camera (package replay
// uses only these): the cache's span, a wait until the cache holds a time,
// where a window's clip must start, and the raw packets of a window.

// Span returns the ids of the oldest and newest cached packets. An empty
// cache is ErrEmpty, a camera never written ErrUnknownCamera.
func (c *Camera) Span(ctx context.Context) (first, last cache.ID, err error) {
	st, err := c.cl.cache.Stats(ctx, c.id)
	return st.First, st.Last, err
}

// WaitUntil blocks until the cache holds t (its newest packet's millisecond
// is at or after t's), for at most maxWait, and reports whether it got
// there. It waits with blocking cache reads, not polling, and also waits
// for a camera that is missing or empty. Only ctx's end or a cache failure
// is an error.
func (c *Camera) WaitUntil(ctx context.Context, t time.Time, maxWait time.Duration) (bool, error) {
	at, err := cache.IDOf(t)
	if err != nil {
		return false, err
	}
	deadline := time.Now().Add(maxWait)
	for {
		_, last, err := c.Span(ctx)
		if err != nil && !errors.Is(err, cache.ErrEmpty) && !errors.Is(err, cache.ErrUnknownCamera) {
			if cerr := ctx.Err(); cerr != nil {
				return false, cerr
			}
			return false, err
		}
		if err == nil && last.MS >= at.MS {
			return true, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		if _, err := c.cl.cache.ReadAfter(ctx, c.id, last, 1, min(left, time.Second)); err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return false, cerr
			}
			return false, err
		}
	}
}

// WindowStart is where a clip of a window must begin.
type WindowStart struct {
	// First is the window's first cached packet.
	First cache.Packet
	// Keyframe is the keyframe at or before First; when the cache holds
	// none (its GOP was trimmed) HasKeyframe is false and a reader skips to
	// the first keyframe inside the window.
	Keyframe    cache.Packet
	HasKeyframe bool
}

// WindowStart finds the first packet of [start, end] (every packet whose
// id's millisecond is in it, however many share one) and the keyframe at
// or before it. ok is false when the window holds no packet.
func (c *Camera) WindowStart(ctx context.Context, start, end time.Time) (ws WindowStart, ok bool, err error) {
	lo, hi, err := c.window(start, end)
	if err != nil {
		return ws, false, err
	}
	return c.WindowStartIDs(ctx, lo, hi)
}

// WindowStartIDs is WindowStart for the packets with lo <= id <= hi (a
// window that starts inside a millisecond, after a packet already played).
func (c *Camera) WindowStartIDs(ctx context.Context, lo, hi cache.ID) (ws WindowStart, ok bool, err error) {
	first, err := c.cl.cache.Range(ctx, c.id, lo, hi, 1)
	if errors.Is(err, cache.ErrEmpty) || errors.Is(err, cache.ErrUnknownCamera) {
		return ws, false, nil
	}
	if err != nil || len(first) == 0 {
		return ws, false, err
	}
	ws.First = first[0]
	kf, err := c.cl.cache.KeyframeAtOrBefore(ctx, c.id, ws.First.ID)
	switch {
	case err == nil:
		ws.Keyframe, ws.HasKeyframe = kf, true
	case !errors.Is(err, cache.ErrNotFound):
		return ws, false, err
	}
	return ws, true, nil
}

// Packets yields the cached packets with from <= id <= through, oldest
// (decode) order, fetched in pages, without decoding: the path for remuxing
// a window. Packets share their Data with the cache (read-only). Errors are
// yielded once, last; a camera missing or empty yields nothing.
func (c *Camera) Packets(ctx context.Context, from, through cache.ID) iter.Seq2[cache.Packet, error] {
	return func(yield func(cache.Packet, error) bool) {
		for {
			pkts, err := c.cl.cache.Range(ctx, c.id, from, through, pastPage)
			if errors.Is(err, cache.ErrEmpty) || errors.Is(err, cache.ErrUnknownCamera) {
				return
			}
			if err != nil {
				yield(cache.Packet{}, err)
				return
			}
			for _, p := range pkts {
				if !yield(p, nil) {
					return
				}
			}
			if len(pkts) < pastPage {
				return
			}
			from = pkts[len(pkts)-1].ID.Next()
		}
	}
}
