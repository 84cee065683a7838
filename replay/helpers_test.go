package replay_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
)

// t0 is the synthetic cache time of a clip's first packet; packets are
// 40 ms apart (25 fps).
const (
	t0   = int64(1_750_000_000_000)
	step = int64(40)
)

func ms(i int) time.Time { return time.UnixMilli(testclip.MS(t0, i, step)).UTC() }

// frames makes n small gray images of camera cam, stamped start + i*gap.
func frames(cam string, n int, start time.Time, gap time.Duration) []flow.Image {
	out := make([]flow.Image, n)
	for i := range out {
		out[i] = &chrysalis.ChImage{Camera: cam, Time: start.Add(time.Duration(i) * gap), Width: 4, Height: 2, Stride: 4,
			Format: chrysalis.GRAY8, Data: make([]byte, 8), Keyframe: i%10 == 0}
	}
	return out
}

// runOp feeds imgs to op as fast as it takes them, closes its input, and
// collects everything it emits until Run returns.
func runOp(t *testing.T, op flow.Operator, imgs []flow.Image) ([]flow.Image, error) {
	t.Helper()
	in, out := make(chan flow.Image), make(chan flow.Image)
	g, ctx := errgroup.WithContext(context.Background())
	g.Go(func() error {
		defer close(in)
		for _, img := range imgs {
			if err := flow.Send(ctx, in, img); err != nil {
				return err
			}
		}
		return nil
	})
	var runErr error
	g.Go(func() error {
		defer close(out)
		runErr = op.Run(ctx, in, out)
		return runErr // an early error stops the feeder
	})
	var got []flow.Image
	for img := range out {
		got = append(got, img)
	}
	g.Wait()
	return got, runErr
}

func released(img flow.Image) bool { return img.Data == nil }
