package operator

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/media"
)

// Motion defaults.
const (
	DefaultMotionThreshold   = 8.0
	DefaultMotionMinInterval = 2 * time.Second
	DefaultMotionSize        = 160
)

// Motion is a frame-differencing motion detector. It emits only the frames
// that trigger (a trigger's time is its img.Time) and releases the others,
// so it is typically followed by WindowReplay or an alerting sink.
//
// Each frame is reduced to a gray grid Size cells wide (the height keeps
// the aspect ratio) by averaging up to 4x4 luma samples per cell, computed
// directly from BGR24, RGB24 or GRAY8 data (no OpenCV). The score is the
// mean absolute difference, 0..255, between that grid and the previous
// frame's; a frame triggers when its score reaches Threshold and at least
// MinInterval of frame time has passed since the camera's last trigger.
// Each camera (img.Camera) is tracked separately. A change of frame size
// restarts the comparison without triggering.
type Motion struct {
	// Threshold is the trigger score (mean absolute gray difference,
	// 0..255). 0 means DefaultMotionThreshold (8).
	Threshold float64
	// MinInterval is the debounce, in frame time, between two triggers of
	// one camera. 0 means DefaultMotionMinInterval (2 s); negative means no
	// debounce.
	MinInterval time.Duration
	// Size is the width of the comparison grid. 0 means DefaultMotionSize
	// (160). Frames narrower than Size use their own width.
	Size int

	lastScore atomic.Uint64 // float64 bits
	frames    atomic.Int64
	triggers  atomic.Int64
}

var _ flow.Operator = (*Motion)(nil)

// LastScore is the score of the last frame compared (0 before the second
// frame). Safe from any goroutine, for tests and metrics.
func (m *Motion) LastScore() float64 { return math.Float64frombits(m.lastScore.Load()) }

// Triggers counts the frames emitted.
func (m *Motion) Triggers() int64 { return m.triggers.Load() }

// Frames counts the frames examined.
func (m *Motion) Frames() int64 { return m.frames.Load() }

type motionState struct {
	prev, cur   []uint8
	w, h        int // source size the grid was computed for
	valid       bool
	lastTrigger time.Time
	triggered   bool
}

// Run implements flow.Operator.
func (m *Motion) Run(ctx context.Context, in <-chan flow.Image, out chan<- flow.Image) error {
	threshold, minInterval, size := m.Threshold, m.MinInterval, m.Size
	if threshold <= 0 {
		threshold = DefaultMotionThreshold
	}
	if minInterval == 0 {
		minInterval = DefaultMotionMinInterval
	}
	if size <= 0 {
		size = DefaultMotionSize
	}
	cams := map[string]*motionState{}
	for {
		img, ok, err := flow.Recv(ctx, in)
		if err != nil || !ok {
			return err
		}
		m.frames.Add(1)
		st := cams[img.Camera]
		if st == nil {
			st = &motionState{}
			cams[img.Camera] = st
		}
		score, compared := st.update(img, size)
		if !compared {
			img.Release()
			continue
		}
		m.lastScore.Store(math.Float64bits(score))
		if score < threshold || (st.triggered && minInterval > 0 && img.Time.Sub(st.lastTrigger) < minInterval) {
			img.Release()
			continue
		}
		st.triggered, st.lastTrigger = true, img.Time
		m.triggers.Add(1)
		if err := flow.Send(ctx, out, img); err != nil {
			return err
		}
	}
}

// update computes img's grid and its score against the previous one. It
// reports false when there was nothing comparable.
func (st *motionState) update(img flow.Image, size int) (float64, bool) {
	if img.Check() != nil {
		st.valid = false
		return 0, false
	}
	gw := min(size, img.Width)
	gh := max(1, (img.Height*gw+img.Width/2)/img.Width)
	if n := gw * gh; cap(st.cur) < n {
		st.cur = make([]uint8, n)
	}
	st.cur = st.cur[:gw*gh]
	grayGrid(img, gw, gh, img.Format.BytesPerPixel(), st.cur)
	comparable := st.valid && st.w == img.Width && st.h == img.Height && len(st.prev) == len(st.cur)
	var score float64
	if comparable {
		var sum int64
		for i, v := range st.cur {
			d := int64(v) - int64(st.prev[i])
			if d < 0 {
				d = -d
			}
			sum += d
		}
		score = float64(sum) / float64(len(st.cur))
	}
	st.prev, st.cur = st.cur, st.prev
	st.w, st.h, st.valid = img.Width, img.Height, true
	return score, comparable
}

// grayGrid averages up to 4x4 luma samples per cell of a gw x gh grid over
// img into dst.
func grayGrid(img *media.ChImage, gw, gh, bpp int, dst []uint8) {
	// Luma weights (BT.601, 8-bit fixed point) for the byte order.
	wr, wg, wb := 77, 150, 29
	i0, i1, i2 := wb, wg, wr // BGR24: B, G, R
	if img.Format == media.RGB24 {
		i0, i2 = wr, wb
	}
	for gy := range gh {
		y0, y1 := gy*img.Height/gh, (gy+1)*img.Height/gh
		sy := max(1, (y1-y0)/4)
		for gx := range gw {
			x0, x1 := gx*img.Width/gw, (gx+1)*img.Width/gw
			sx := max(1, (x1-x0)/4)
			sum, n := 0, 0
			for y := y0; y < max(y1, y0+1); y += sy {
				row := img.Data[y*img.Stride:]
				for x := x0; x < max(x1, x0+1); x += sx {
					if bpp == 1 {
						sum += int(row[x])
					} else {
						p := row[x*3 : x*3+3]
						sum += (i0*int(p[0]) + i1*int(p[1]) + i2*int(p[2])) >> 8
					}
					n++
				}
			}
			dst[gy*gw+gx] = uint8(sum / n)
		}
	}
}
