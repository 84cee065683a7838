package ingest

import (
	"fmt"
	"testing"
	"time"
)

// clockEvent is one packet as the reader sees it: its DTS (time base
// 1/12800, 512 ticks = one 25 fps frame) and its read time in ms after t0.
// restart marks the first packet of a new connection; restartAt (ms after
// t0, -1 for none) is the probe start handed to clock.restart.
type clockEvent struct {
	dts       int64
	now       int64
	restart   bool
	restartAt int64
}

const (
	tb25   = 1.0 / 12800
	frame  = 512 // ticks per 40 ms frame
	t0ms   = 1_700_000_000_000
	nFrame = 40 // ms
)

// steady: n packets, 40 ms apart in stream and wall time, from dts/now.
func steady(n int, dts, now int64) []clockEvent {
	ev := make([]clockEvent, n)
	for i := range ev {
		ev[i] = clockEvent{dts: dts + int64(i)*frame, now: now + int64(i)*nFrame, restartAt: -1}
	}
	return ev
}

// wallStep: n packets 40 ms apart in stream time, read every step ms.
func wallStep(n int, step int64) []clockEvent {
	ev := make([]clockEvent, n)
	for i := range ev {
		ev[i] = clockEvent{dts: int64(i) * frame, now: int64(i) * step, restartAt: -1}
	}
	return ev
}

func TestClock(t *testing.T) {
	type result struct {
		ms      []int64 // after t0
		reasons []string
	}
	tests := []struct {
		name  string
		free  bool
		ev    []clockEvent
		check func(t *testing.T, ev []clockEvent, r result)
	}{
		{
			name: "steady",
			ev:   steady(100, 0, 0),
			check: func(t *testing.T, _ []clockEvent, r result) {
				wantSpaced(t, r.ms, 0, 0, nFrame)
				wantReasons(t, r.reasons, map[int]string{0: anchorStart})
			},
		},
		{
			// Packets arrive five at a time, all at the read time of the
			// last of the five (up to 160 ms late), with up to 20 ms of
			// jitter from burst to burst.
			name: "burst arrivals",
			ev: func() []clockEvent {
				ev := steady(200, 0, 0)
				for i := range ev {
					ev[i].now = int64(i/5*5+4)*nFrame + int64(i/5%3)*10
				}
				return ev
			}(),
			check: func(t *testing.T, ev []clockEvent, r result) {
				// Anchored at the first packet's read time (160 ms), then
				// pulled back by the packet read earliest for its stream
				// time: packet 4 (read at 160) puts the anchor at 0,
				// where it stays (packets 1-4 are 1 ms apart to keep
				// stamps increasing); from packet 5 on, 40 ms apart.
				wantReasons(t, r.reasons, map[int]string{0: anchorStart})
				wantNotAfterRead(t, ev, r.ms)
				wantSpaced(t, r.ms[5:], 5, 5*nFrame, nFrame)
			},
		},
		{
			// A stream probe holds the first second (25 packets) back and
			// hands them out at once: anchored at the probe's start, they
			// keep their 40 ms spacing.
			name: "probe backlog",
			ev: func() []clockEvent {
				ev := steady(100, 0, 0)
				for i := 0; i < 25; i++ {
					ev[i].now = 1000
				}
				ev[0].restart, ev[0].restartAt = true, 0
				return ev
			}(),
			check: func(t *testing.T, _ []clockEvent, r result) {
				wantSpaced(t, r.ms, 0, 0, nFrame)
				wantReasons(t, r.reasons, map[int]string{0: anchorStart})
			},
		},
		{
			// DTS goes back to 0 at packet 50 while the wall clock goes on.
			name: "backwards jump",
			ev:   append(steady(50, 100*frame, 0), steady(50, 0, 50*nFrame)...),
			check: func(t *testing.T, _ []clockEvent, r result) {
				wantSpaced(t, r.ms, 0, 0, nFrame)
				wantReasons(t, r.reasons, map[int]string{0: anchorStart, 50: anchorJump})
			},
		},
		{
			// DTS jumps 60 s forward; the wall clock does not.
			name: "forward jump",
			ev:   append(steady(50, 0, 0), steady(50, 50*frame+60*25*frame, 50*nFrame)...),
			check: func(t *testing.T, _ []clockEvent, r result) {
				wantSpaced(t, r.ms, 0, 0, nFrame)
				wantReasons(t, r.reasons, map[int]string{0: anchorStart, 50: anchorJump})
			},
		},
		{
			// A 1.5 s forward jump in DTS, within MaxClockStep, while the
			// wall clock goes on 40 ms: the stream says 1.5 s passed, but
			// a live packet is not captured after it arrives, so the
			// stamps stay on the read times, with no re-anchor logged.
			name: "small forward jump",
			ev:   append(steady(50, 0, 0), steady(50, 50*frame+1500/nFrame*frame, 50*nFrame)...),
			check: func(t *testing.T, ev []clockEvent, r result) {
				wantSpaced(t, r.ms, 0, 0, nFrame)
				wantNotAfterRead(t, ev, r.ms)
				wantReasons(t, r.reasons, map[int]string{0: anchorStart})
			},
		},
		{
			// The camera's clock is slow: frames are 40 ms apart by DTS
			// but 50 ms by the wall clock. The lag grows 10 ms a frame;
			// beyond MaxClockDrift the clock re-anchors (at frame 201).
			name: "drift behind",
			ev:   wallStep(500, 50),
			check: func(t *testing.T, ev []clockEvent, r result) {
				wantWithinDrift(t, ev, r.ms)
				wantReasons(t, r.reasons, map[int]string{0: anchorStart, 201: anchorDrift, 402: anchorDrift})
				wantSpaced(t, r.ms[:201], 0, 0, nFrame)
			},
		},
		{
			// The camera's clock is fast: 40 ms by DTS, 30 ms by the wall.
			// A stamp never runs ahead of the read time, so every packet
			// pulls the anchor back and is stamped when it was read.
			name: "drift ahead",
			ev:   wallStep(500, 30),
			check: func(t *testing.T, ev []clockEvent, r result) {
				wantNotAfterRead(t, ev, r.ms)
				wantReasons(t, r.reasons, map[int]string{0: anchorStart})
				wantSpaced(t, r.ms, 0, 0, 30)
			},
		},
		{
			// A pusher's packets arrive 45 ms before the stamps the probe
			// start gives them (the probe began after the push did): from
			// the first packet after the probe backlog on, each is stamped
			// at its read time, then 40 ms apart again.
			name: "early arrivals",
			ev: func() []clockEvent {
				ev := steady(100, 0, -45)
				for i := 0; i < 25; i++ {
					ev[i].now = 1000
				}
				ev[0].restart, ev[0].restartAt = true, 0
				return ev
			}(),
			check: func(t *testing.T, ev []clockEvent, r result) {
				wantReasons(t, r.reasons, map[int]string{0: anchorStart})
				wantSpaced(t, r.ms[:25], 0, 0, nFrame)
				// Packet 25 (read at 955) cannot go below packet 24's 960.
				if r.ms[25] != 961 {
					t.Fatalf("packet 25 stamped %d, want 961", r.ms[25])
				}
				wantSpaced(t, r.ms[26:], 26, 26*nFrame-45, nFrame)
				wantNotAfterRead(t, ev[26:], r.ms[26:])
			},
		},
		{
			// A reconnect restarts DTS at 0 three seconds later.
			name: "reconnect",
			ev: func() []clockEvent {
				ev := append(steady(50, 0, 0), steady(50, 0, 5000)...)
				ev[50].restart, ev[50].restartAt = true, 4900
				return ev
			}(),
			check: func(t *testing.T, _ []clockEvent, r result) {
				wantSpaced(t, r.ms[:50], 0, 0, nFrame)
				wantSpaced(t, r.ms[50:], 50, 4900, nFrame)
				wantReasons(t, r.reasons, map[int]string{0: anchorStart, 50: anchorStart})
			},
		},
		{
			// The new connection's anchor lies before the last stamp (the
			// previous stream ran ahead): stamps still increase.
			name: "reconnect before last stamp",
			ev: func() []clockEvent {
				ev := append(steady(50, 0, 0), steady(50, 0, 1000)...)
				ev[50].restart, ev[50].restartAt = true, 1000
				return ev
			}(),
			check: func(t *testing.T, _ []clockEvent, r result) {
				wantIncreasing(t, r.ms)
				if r.ms[50] != r.ms[49]+1 || r.ms[99] != 1000+49*nFrame {
					t.Errorf("after the reconnect: %d after %d, last %d", r.ms[50], r.ms[49], r.ms[99])
				}
			},
		},
		{
			name: "repeated dts",
			ev:   []clockEvent{{0, 0, false, -1}, {0, 0, false, -1}, {0, 1, false, -1}, {frame, 40, false, -1}},
			check: func(t *testing.T, _ []clockEvent, r result) {
				wantEqual(t, r.ms, []int64{0, 1, 2, 40})
			},
		},
		{
			// A file read as fast as possible: 100 packets within 5 ms of
			// wall time still get 100 stamps 40 ms apart from the first.
			name: "free file",
			free: true,
			ev: func() []clockEvent {
				ev := steady(100, 0, 0)
				for i := range ev {
					ev[i].now = int64(i) / 20
				}
				return ev
			}(),
			check: func(t *testing.T, _ []clockEvent, r result) {
				wantSpaced(t, r.ms, 0, 0, nFrame)
				wantReasons(t, r.reasons, map[int]string{0: anchorStart})
			},
		},
		{
			// A free clock ignores the wall clock (10 s ahead of it is not
			// drift) and continues one frame after the last stamp across a
			// DTS discontinuity.
			name: "free file jump",
			free: true,
			ev: func() []clockEvent {
				ev := append(steady(300, 0, 0), steady(10, 0, 0)...)
				for i := range ev {
					ev[i].now = 0
				}
				return ev
			}(),
			check: func(t *testing.T, _ []clockEvent, r result) {
				wantSpaced(t, r.ms, 0, 0, nFrame)
				wantReasons(t, r.reasons, map[int]string{0: anchorStart, 300: anchorJump})
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{free: tc.free}
			t0 := time.UnixMilli(t0ms)
			var r result
			for _, e := range tc.ev {
				if e.restart {
					at := time.Time{}
					if e.restartAt >= 0 {
						at = t0.Add(time.Duration(e.restartAt) * time.Millisecond)
					}
					c.restart(at)
				}
				ms, why := c.stamp(e.dts, tb25, t0.Add(time.Duration(e.now)*time.Millisecond))
				r.ms = append(r.ms, ms-t0ms)
				r.reasons = append(r.reasons, why)
			}
			wantIncreasing(t, r.ms)
			tc.check(t, tc.ev, r)
		})
	}
}

func wantIncreasing(t *testing.T, ms []int64) {
	t.Helper()
	for i := 1; i < len(ms); i++ {
		if ms[i] <= ms[i-1] {
			t.Fatalf("stamp %d = %d does not increase after %d", i, ms[i], ms[i-1])
		}
	}
}

// wantSpaced: ms[i] == first + (i-from)*step for every i (ms holds the
// stamps from index from on).
func wantSpaced(t *testing.T, ms []int64, from int, first, step int64) {
	t.Helper()
	for i, m := range ms {
		if want := first + int64(i)*step; m != want {
			t.Fatalf("stamp %d = %d, want %d", from+i, m, want)
		}
	}
}

func wantWithinDrift(t *testing.T, ev []clockEvent, ms []int64) {
	t.Helper()
	for i := range ms {
		if d := time.Duration(ms[i]-ev[i].now) * time.Millisecond; d > MaxClockDrift || d < -MaxClockDrift {
			t.Fatalf("stamp %d is %v off the wall clock", i, d)
		}
	}
}

// wantNotAfterRead: no stamp is later than its packet's read time, but
// for the 1 ms steps that keep stamps strictly increasing.
func wantNotAfterRead(t *testing.T, ev []clockEvent, ms []int64) {
	t.Helper()
	for i := range ms {
		if ms[i] > ev[i].now && (i == 0 || ms[i] != ms[i-1]+1) {
			t.Fatalf("stamp %d = %d is after its read time %d", i, ms[i], ev[i].now)
		}
	}
}

func wantReasons(t *testing.T, got []string, want map[int]string) {
	t.Helper()
	for i, g := range got {
		if g != want[i] {
			t.Fatalf("packet %d: re-anchored for %q, want %q (all: %v)", i, g, want[i], nonEmpty(got))
		}
	}
}

func nonEmpty(rs []string) string {
	s := ""
	for i, r := range rs {
		if r != "" {
			s += fmt.Sprintf(" %d:%s", i, r)
		}
	}
	return s
}

func wantEqual(t *testing.T, got, want []int64) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stamps %v, want %v", got, want)
	}
}
