package watch

import (
	"context"
	"image"
	"math"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/media"
)

func TestDetectionBoard(t *testing.T) {
	b := NewDetectionBoard(2 * time.Second)
	now := time.Unix(1_700_000_000, 0)
	b.now = func() time.Time { return now }

	img := &media.ChImage{Camera: "cam", Width: 640, Height: 480, Detections: []media.Detections{
		// A model that ran on a half-size branch.
		{Model: "hog", Width: 320, Height: 240, Objects: []media.Detection{{Box: image.Rect(32, 24, 96, 120), Label: "person", Score: 1.5}}},
		// One that gives no size: the frame's.
		{Model: "haar", Objects: []media.Detection{{Box: image.Rect(320, 0, 960, 240), Label: "face"}}},
	}}
	in := make(chan flow.Image, 2)
	in <- img
	in <- &media.ChImage{Camera: "cam", Width: 640, Height: 480} // no detections: keeps the boxes
	close(in)
	if err := b.Run(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	got := b.Boxes("cam")
	want := []Detection{{X: 0.1, Y: 0.1, W: 0.2, H: 0.4, Label: "person", Score: 1.5}, {X: 0.5, Y: 0, W: 0.5, H: 0.5, Label: "face"}}
	if len(got) != len(want) {
		t.Fatalf("boxes %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Label != w.Label || g.Score != w.Score || math.Abs(g.X-w.X) > 1e-9 || math.Abs(g.Y-w.Y) > 1e-9 ||
			math.Abs(g.W-w.W) > 1e-9 || math.Abs(g.H-w.H) > 1e-9 {
			t.Fatalf("box %d = %+v, want %+v (relative to the frame, clamped to it)", i, g, w)
		}
	}
	if b.Boxes("other") != nil {
		t.Fatal("boxes for a camera that had none")
	}
	now = now.Add(2*time.Second + time.Millisecond)
	if got := b.Boxes("cam"); got != nil {
		t.Fatalf("boxes %+v after the max age", got)
	}
}
