package watch

import (
	"context"
	"sync"
	"time"

	"github.com/chryscloud/chrysalis-go/flow"
)

// DefaultBoardMaxAge is how long a DetectionBoard shows a camera's last
// detections when no newer frame with detections reaches it.
const DefaultBoardMaxAge = 3 * time.Second

// DetectionBoard is the bridge from a graph's detections to the grid page:
// a flow sink that keeps, per camera, the boxes of the newest frame that
// carries detections (from cv.Detect), and a Boxes method to pass as
// Options.Detections. Boxes are given relative to the frame (0..1), so they
// fit the tile whatever size the model ran at. Safe for concurrent use.
//
//	board := watch.NewDetectionBoard(0)
//	g.Sink("boxes", board, people)               // after cv.Detect
//	w := watch.New(cl, watch.Options{Detections: board.Boxes, ...})
type DetectionBoard struct {
	maxAge time.Duration
	now    func() time.Time

	mu   sync.Mutex
	last map[string]boardEntry
}

type boardEntry struct {
	at    time.Time
	boxes []Detection
}

// NewDetectionBoard returns a board that forgets a camera's boxes maxAge
// after the frame that carried them reached it (0: DefaultBoardMaxAge).
func NewDetectionBoard(maxAge time.Duration) *DetectionBoard {
	if maxAge <= 0 {
		maxAge = DefaultBoardMaxAge
	}
	return &DetectionBoard{maxAge: maxAge, now: time.Now, last: map[string]boardEntry{}}
}

var _ flow.Sink = (*DetectionBoard)(nil)

// Run implements flow.Sink: it records each image's detections (every
// model's objects, labelled) and releases the image.
func (b *DetectionBoard) Run(ctx context.Context, in <-chan flow.Image) error {
	for {
		img, ok, err := flow.Recv(ctx, in)
		if err != nil || !ok {
			return err
		}
		b.Put(img)
		img.Release()
	}
}

// Put records img's detections as its camera's newest, replacing the
// boxes of every model that ran on it; an image without detections
// changes nothing. It does not take img's reference.
func (b *DetectionBoard) Put(img flow.Image) {
	if len(img.Detections) == 0 {
		return
	}
	var boxes []Detection
	for _, d := range img.Detections {
		w, h := float64(d.Width), float64(d.Height)
		if w <= 0 || h <= 0 {
			w, h = float64(img.Width), float64(img.Height)
		}
		if w <= 0 || h <= 0 {
			continue
		}
		for _, o := range d.Objects {
			r := o.Box.Canon()
			x0, y0 := clamp01(float64(r.Min.X)/w), clamp01(float64(r.Min.Y)/h)
			x1, y1 := clamp01(float64(r.Max.X)/w), clamp01(float64(r.Max.Y)/h)
			boxes = append(boxes, Detection{X: x0, Y: y0, W: x1 - x0, H: y1 - y0, Label: o.Label, Score: o.Score})
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last[img.Camera] = boardEntry{at: b.now(), boxes: boxes}
}

// Boxes returns camera's newest boxes, or nil when it has none or they are
// older than the board's max age. Pass it as Options.Detections.
func (b *DetectionBoard) Boxes(camera string) []Detection {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.last[camera]
	if !ok || b.now().Sub(e.at) > b.maxAge {
		return nil
	}
	return append([]Detection(nil), e.boxes...)
}

func clamp01(v float64) float64 {
	return min(max(v, 0), 1)
}
