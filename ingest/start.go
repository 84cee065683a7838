package ingest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/democlip"
)

// DemoInput, as Config.Input, plays the bundled demo camera: a 10 s
// 1280x720 H.264 clip at 25 fps, a keyframe every 2 s, of a static scene a
// box crosses between 4 s and 7 s of every loop. Start plays it looped and
// paced in real time, like a live camera.
const DemoInput = "chrysalis:demo"

// Running is an ingest started in the background by Start. Stop ends it.
type Running struct {
	*Ingest
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Run's result, valid after done
	dir    string
	stop   sync.Once
}

// Start runs an ingest of cfg into c on a goroutine of its own, and
// returns once the camera's first packet is in the cache, so that readers
// started next never see an unknown camera. It is the one call that puts a
// camera into an in-process cache from code: a file (Realtime and Loop make
// it look live), a URL, or DemoInput.
//
// ctx bounds only the wait for the first packet; the ingest runs until
// Stop, or until its input ends (a file without Loop). Start fails when the
// ingest stops before its first packet (the input cannot be opened, say).
func Start(ctx context.Context, c cache.Cache, cfg Config) (*Running, error) {
	r := &Running{done: make(chan struct{})}
	if cfg.Input == DemoInput {
		dir, err := os.MkdirTemp("", "chrysalis-demo-*")
		if err != nil {
			return nil, fmt.Errorf("ingest: demo camera: %w", err)
		}
		if cfg.Input, err = democlip.WriteTo(dir); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("ingest: demo camera: %w", err)
		}
		r.dir, cfg.Realtime, cfg.Loop = dir, true, true
	}
	in, err := New(c, cfg)
	if err != nil {
		r.cleanup()
		return nil, err
	}
	r.Ingest = in
	rctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.err = in.Run(rctx)
	}()
	// A blocking read waits for a camera that is not there yet; the bound
	// only lets us notice an ingest that stopped first.
	for {
		pkts, err := c.ReadAfter(ctx, cfg.Camera, cache.ID{}, 1, 100*time.Millisecond)
		if err == nil && len(pkts) > 0 {
			return r, nil
		}
		if err != nil && !errors.Is(err, cache.ErrUnknownCamera) {
			r.Stop()
			return nil, fmt.Errorf("ingest: camera %q: waiting for its first packet: %w", cfg.Camera, err)
		}
		select {
		case <-r.done:
			err := r.Stop()
			if err == nil {
				err = errors.New("the input ended")
			}
			return nil, fmt.Errorf("ingest: camera %q stopped before its first packet: %w", cfg.Camera, err)
		case <-ctx.Done():
			r.Stop()
			return nil, ctx.Err()
		default:
		}
	}
}

// Done is closed when the ingest has stopped.
func (r *Running) Done() <-chan struct{} { return r.done }

// Stop stops the ingest, waits for it (buffered packets are flushed, see
// Run) and returns Run's error. It is idempotent.
func (r *Running) Stop() error {
	r.stop.Do(func() {
		r.cancel()
		<-r.done
		r.cleanup()
	})
	return r.err
}

func (r *Running) cleanup() {
	if r.dir != "" {
		os.RemoveAll(r.dir)
	}
}
