package streamsx_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reugn/go-streams"
	"github.com/reugn/go-streams/extension"
	gsflow "github.com/reugn/go-streams/flow"
	"go.uber.org/goleak"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/streamsx"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func image(t time.Time, key bool) flow.Image {
	return &chrysalis.ChImage{Camera: "cam", Time: t, Width: 2, Height: 2, Stride: 2, Format: chrysalis.GRAY8,
		Data: make([]byte, 4), Keyframe: key}
}

// A Chrysalis source at 25 fps (fake clock) into go-streams: a 2 s window
// sliding by 1 s, counted by a go-streams Map, collected by a ChanSink.
func TestSlidingWindowCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		start := time.Now() // the bubble's epoch, a whole second
		src := flow.SourceFunc(func(ctx context.Context, out chan<- flow.Image) error {
			// Frame i has event time start+10ms+40i ms and is sent 20 ms
			// later: no frame falls on a window boundary or arrives on a
			// window tick, so the counts do not depend on scheduling.
			time.Sleep(30 * time.Millisecond)
			for i := range 250 {
				et := start.Add(10*time.Millisecond + time.Duration(i)*40*time.Millisecond)
				if err := flow.Send(ctx, out, image(et, i%50 == 0)); err != nil {
					return err
				}
				time.Sleep(40 * time.Millisecond)
			}
			return nil
		})
		ch := make(chan flow.Image)
		errc := make(chan error, 1)
		go func() { defer close(ch); errc <- src.Run(ctx, ch) }()

		window := gsflow.NewSlidingWindowWithOpts(2*time.Second, time.Second, gsflow.SlidingWindowOpts[flow.Image]{
			EventTimeExtractor: func(img flow.Image) time.Time { return img.Time },
		})
		count := gsflow.NewMap(func(w []flow.Image) int { return len(w) }, 1)
		sink := extension.NewChanSink(make(chan any))
		go streamsx.ToStreams(ctx, ch).Via(window).Via(count).To(sink)
		var counts []int
		for v := range sink.Out {
			counts = append(counts, v.(int))
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		// Windows cover 2 s of event time and end on whole seconds: 50
		// frames each, the last full one (8 s, 10 s]. When the input
		// closes, go-streams emits one final window, (9 s, 11 s], holding
		// the 25 frames after 9 s.
		want := []int{50, 50, 50, 50, 50, 50, 50, 50, 50, 25}
		if !slices.Equal(counts, want) {
			t.Fatalf("window counts %v, want %v", counts, want)
		}
		t.Logf("sliding window counts %v", counts)
	})
}

func runOperator(t *testing.T, op flow.Operator, imgs []flow.Image) ([]flow.Image, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in, out := make(chan flow.Image), make(chan flow.Image)
	errc := make(chan error, 1)
	go func() { defer close(out); errc <- op.Run(ctx, in, out) }()
	go func() {
		defer close(in)
		for _, img := range imgs {
			if flow.Send(ctx, in, img) != nil {
				return
			}
		}
	}()
	var got []flow.Image
	for img := range out {
		got = append(got, img)
	}
	err := <-errc
	cancel()
	return got, err
}

func frames(n int) []flow.Image {
	var out []flow.Image
	for i := range n {
		out = append(out, image(time.UnixMilli(int64(40*i)), i%10 == 0))
	}
	return out
}

func TestOperator(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Run("filter inside a graph", func(t *testing.T) {
		op := streamsx.Operator(func(src streams.Source) streams.Flow {
			return src.Via(gsflow.NewFilter(func(img flow.Image) bool { return img.Keyframe }, 1))
		})
		got, err := runOperator(t, op, frames(100))
		if err != nil || len(got) != 10 || !got[1].Time.Equal(time.UnixMilli(400)) {
			t.Fatalf("%d images, %v", len(got), err)
		}
	})
	t.Run("element that is not an image", func(t *testing.T) {
		op := streamsx.Operator(func(src streams.Source) streams.Flow {
			return src.Via(gsflow.NewMap(func(img flow.Image) any {
				if img.Time.Equal(time.UnixMilli(200)) {
					return "oops"
				}
				return img
			}, 1))
		})
		got, err := runOperator(t, op, frames(100))
		var ee *streamsx.ElementError
		if !errors.As(err, &ee) || ee.Value != "oops" || len(got) != 5 {
			t.Fatalf("got %d images and %v, want 5 then an *ElementError", len(got), err)
		}
		t.Logf("error: %v", err)
	})
	t.Run("cancel with a stalled consumer", func(t *testing.T) {
		op := streamsx.Operator(func(src streams.Source) streams.Flow {
			return src.Via(gsflow.NewPassThrough()).Via(gsflow.NewMap(func(img flow.Image) flow.Image { return img }, 2))
		})
		ctx, cancel := context.WithCancel(context.Background())
		in, out := make(chan flow.Image, 10), make(chan flow.Image) // nobody reads out
		imgs := frames(10)
		for _, img := range imgs {
			in <- img
		}
		errc := make(chan error, 1)
		go func() { errc <- op.Run(ctx, in, out) }()
		time.Sleep(20 * time.Millisecond)
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v, want context.Canceled", err)
		}
		// Everything that entered go-streams was released on the way out.
		n := 0
		for _, img := range imgs {
			if img.Data == nil {
				n++
			}
		}
		t.Logf("after cancel: %d of %d images released, %d left in the input", n, len(imgs), len(in))
		if n+len(in) != len(imgs) {
			t.Fatalf("%d released + %d unread != %d", n, len(in), len(imgs))
		}
	})
}
