package ingest

import (
	"math"
	"time"
)

// Capture-time bounds (see "Capture time" in the package doc).
const (
	// MaxClockDrift bounds how far a live input's stamps, which follow the
	// stream's own clock, may run behind the wall clock (Config.Now at read
	// time); they never run ahead of it (see clock). Beyond it the stream
	// clock is re-anchored to the wall clock. Two seconds absorbs the
	// bursts of an RTMP push and the packets a stream probe holds back (up
	// to 1s) without re-anchoring, while a camera whose clock runs slow is
	// pulled back within two seconds of real time.
	MaxClockDrift = 2 * time.Second
	// MaxClockStep: a DTS step forward longer than this, or any step
	// backwards, is a timestamp discontinuity and re-anchors the clock.
	// (On a live input a smaller jump is caught by MaxClockDrift.)
	MaxClockStep = 10 * time.Second
)

// Why a clock (re-)anchored; "" when it did not.
const (
	anchorStart = "start" // first packet, or first packet after a reconnect
	anchorTB    = "time base"
	anchorJump  = "timestamp jump"
	anchorDrift = "drift"
)

// clock turns a stream's decode timestamps into capture times: each
// packet's cache millisecond is anchor + (dts - dts0) × time base, where
// (anchor, dts0) is the wall-clock time and DTS of the packet the clock was
// last anchored at. Stamps are strictly increasing: a stamp at or before the
// previous one becomes the previous + 1 ms.
//
// A live clock (free false) never stamps a packet after the time it was
// read (a frame cannot be captured after it arrived): a packet read before
// its stamp pulls the anchor back to its read time, so the anchor settles
// on the earliest arrival. It re-anchors at the wall clock when the stream
// time falls behind it by more than MaxClockDrift. A free clock (a file read
// as fast as possible) follows the stream's time only: it is anchored at
// the wall-clock time of the first packet and never re-anchored for drift,
// and on a discontinuity it continues one frame step after the previous
// stamp.
//
// A clock is owned by the reading goroutine.
type clock struct {
	free bool

	set     bool      // anchored
	pending time.Time // anchor for the next first packet (zero: its read time)
	anchor  time.Time
	dts0    int64
	tb      float64 // seconds per DTS tick

	hasLast bool
	lastDTS int64
	lastMS  int64
	step    time.Duration // the last regular DTS step (free clock jumps)
}

// restart makes the next packet re-anchor the clock (a new connection). at
// is when its first packet was read at the earliest (the start of the
// stream probe, which may hold packets back); zero means the packet's own
// read time. Stamps stay above the previous connection's.
func (c *clock) restart(at time.Time) {
	c.set, c.pending = false, at
}

// at is the stream time of dts on the current anchor.
func (c *clock) at(dts int64) time.Time {
	return c.anchor.Add(ticks(dts-c.dts0, c.tb))
}

// stamp returns the cache millisecond (UTC ms since the epoch) of a packet
// with decode timestamp dts in a stream of time base tb seconds, read at
// now, and why the clock re-anchored for it ("" if it did not).
func (c *clock) stamp(dts int64, tb float64, now time.Time) (ms int64, reason string) {
	var d time.Duration // DTS step from the previous packet
	switch {
	case !c.set:
		reason = anchorStart
	case tb != c.tb:
		reason = anchorTB
	default:
		d = ticks(dts-c.lastDTS, tb)
		if dts < c.lastDTS || d > MaxClockStep {
			reason = anchorJump
		} else if off := c.at(dts).Sub(now); !c.free && (off > MaxClockDrift || off < -MaxClockDrift) {
			reason = anchorDrift
		} else if !c.free && off > 0 {
			// Read before its stamp: a live packet cannot have been
			// captured after it arrived, so the anchor was late (a
			// probe start after the pusher's first packets, a camera
			// clock running fast). Pull it back so this packet is
			// stamped at its read time; the anchor only ever moves
			// back this way, to the earliest arrival seen.
			c.anchor = c.anchor.Add(-off)
		}
	}
	if reason == "" && d > 0 {
		c.step = d
	}
	if reason != "" {
		anchor := now
		switch {
		case reason == anchorStart && !c.pending.IsZero():
			anchor = c.pending
		case c.free && c.hasLast && reason != anchorStart:
			// A file's timeline goes on one frame after the last stamp.
			anchor = time.UnixMilli(c.lastMS).Add(max(c.step, time.Millisecond))
		}
		c.set, c.pending, c.anchor, c.dts0, c.tb = true, time.Time{}, anchor, dts, tb
	}
	ms = c.at(dts).UnixMilli()
	if c.hasLast && ms <= c.lastMS {
		ms = c.lastMS + 1
	}
	c.hasLast, c.lastDTS, c.lastMS = true, dts, ms
	return ms, reason
}

// ticks is n ticks of time base tb seconds, rounded to the nanosecond (a
// float time base such as 1/12800 is not exact).
func ticks(n int64, tb float64) time.Duration {
	return time.Duration(math.Round(float64(n) * tb * float64(time.Second)))
}
