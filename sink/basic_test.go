package sink_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/sink"
)

// released reports whether img was released (a pool-less image drops its
// Data on its last Release).
func released(img flow.Image) bool { return img.Data == nil }

func hand(n int) []flow.Image {
	out := make([]flow.Image, n)
	for i := range out {
		out[i] = &chrysalis.ChImage{Camera: "c", Width: 1, Height: 1, Stride: 3, Data: []byte{1, 2, 3}, Time: time.UnixMilli(int64(i))}
	}
	return out
}

func TestFunc(t *testing.T) {
	defer goleak.VerifyNone(t)
	imgs := hand(3)
	var seen []int64
	s := sink.Func(func(ctx context.Context, img flow.Image) error {
		if released(img) {
			t.Error("image released before fn returned")
		}
		seen = append(seen, img.TimestampMS())
		return nil
	})
	if err := s.Run(context.Background(), feed(context.Background(), imgs)); err != nil || len(seen) != 3 {
		t.Fatalf("Run: %v, saw %v", err, seen)
	}
	for _, img := range imgs {
		if !released(img) {
			t.Fatal("image not released")
		}
	}

	boom := errors.New("boom")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := sink.Func(func(context.Context, flow.Image) error { return boom }).Run(ctx, feed(ctx, hand(2)))
	if !errors.Is(err, boom) {
		t.Fatalf("Run: %v, want boom", err)
	}
}

func TestChan(t *testing.T) {
	defer goleak.VerifyNone(t)
	ch := make(chan flow.Image, 3)
	imgs := hand(3)
	if err := sink.Chan(ch).Run(context.Background(), feed(context.Background(), imgs)); err != nil {
		t.Fatal(err)
	}
	if len(ch) != 3 || released(<-ch) {
		t.Fatal("images not forwarded as they were")
	}

	// Nobody receives: cancelling releases the image in hand.
	ctx, cancel := context.WithCancel(context.Background())
	in := make(chan flow.Image, 1)
	img := hand(1)[0]
	in <- img
	done := make(chan error, 1)
	go func() { done <- sink.Chan(make(chan flow.Image)).Run(ctx, in) }()
	waitFor(t, "Run to take the image from its input", func() bool { return len(in) == 0 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || !released(img) {
		t.Fatalf("Run: %v, released %v", err, released(img))
	}
}

func TestDiscard(t *testing.T) {
	defer goleak.VerifyNone(t)
	d := sink.Discard()
	imgs := hand(5)
	if err := d.Run(context.Background(), feed(context.Background(), imgs)); err != nil || d.Count() != 5 || !released(imgs[4]) {
		t.Fatalf("Run: %v, count %d", err, d.Count())
	}
}
