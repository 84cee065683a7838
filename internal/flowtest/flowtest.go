// Package flowtest holds what the tests of flow nodes share: small
// synthetic images and a harness that runs one operator to completion.
package flowtest

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/media"
)

// Frames makes n small gray images of camera cam, stamped start + i*gap;
// every tenth is a keyframe.
func Frames(cam string, n int, start time.Time, gap time.Duration) []flow.Image {
	out := make([]flow.Image, n)
	for i := range out {
		out[i] = &media.ChImage{Camera: cam, Time: start.Add(time.Duration(i) * gap), Width: 4, Height: 2, Stride: 4,
			Format: media.GRAY8, Data: make([]byte, 8), Keyframe: i%10 == 0}
	}
	return out
}

// RunOp feeds imgs to op as fast as it takes them, closes its input, and
// collects everything it emits until Run returns.
func RunOp(t testing.TB, op flow.Operator, imgs []flow.Image) ([]flow.Image, error) {
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
	_ = g.Wait()
	return got, runErr
}

// Released reports whether img was released (its Data let go).
func Released(img flow.Image) bool { return img.Data == nil }
