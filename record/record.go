// Package record archives cameras: it remuxes their cached packets (no
// re-encode) into MP4 segments on disk, switched on and off through the API
// (Start, Stop) or through the edge proxy's Redis switch (the store field
// of last_access_time_<cam>, see Switch).
//
// Switching on at t records from the keyframe at or before t - PreRoll,
// read from the cache, and then follows the camera's new packets as they
// arrive. Switching off at t records through t + PostRoll. Segments are cut
// at the first keyframe past Segment, and at a gap in the packets' Number
// (a lost packet: the next segment starts at the next keyframe), so each
// segment plays on its own.
//
// Files: DIR/<camera>/<camera>_<start>.mp4, start being the UTC time of
// the segment's first packet (cache time), as 20060102T150405.000Z, so
// names sort in time order. A segment being written lives under a
// temporary name (".<name>.*.part") and is renamed into place when it is
// finished, so every *.mp4 is complete.
//
// Crashes: segments are fragmented MP4 (mp4.Options.FragmentedMP4), a new
// fragment at every keyframe. On SIGTERM (Close) the open segment is
// finalised. After SIGKILL the temporary file plays up to its last
// fragment: the loss is at most one keyframe interval (GOP) plus one
// packet; New renames such leftovers into place.
//
// Index: beside each segment, <name>.idx holds one JSON line per packet
// (its cache id and fields but the data); List reads it, ReadSegment turns a
// segment back into the cached packets, and WithArchive puts the archive
// behind a cache, so an export of a window the cache has trimmed reads it
// from the segments. Trigger is a flow sink switching recording on at
// events and off a while after the last one.
package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
)

// Defaults of Options.
const (
	DefaultSegment = time.Minute
	DefaultPreRoll = 5 * time.Second
	DefaultPoll    = 500 * time.Millisecond
)

// Options configures a Recorder.
type Options struct {
	// Dir is the archive's root; each camera writes to Dir/<camera>/.
	// Required.
	Dir string
	// Segment is the segment length: a segment ends at the first keyframe
	// at least Segment after its start. Default DefaultSegment (1 min).
	Segment time.Duration
	// PreRoll is how much before the switch-on time recording starts (at
	// the keyframe at or before it, from the cache). Default
	// DefaultPreRoll (5 s); negative: none.
	PreRoll time.Duration
	// PostRoll is how long recording continues after the switch-off time.
	// Default 0.
	PostRoll time.Duration
	// KeepAge deletes finished segments that started more than KeepAge
	// before now, so the archive spans at most KeepAge plus the open
	// segment. 0: no age bound.
	KeepAge time.Duration
	// KeepBytes deletes the oldest finished segments until their total
	// size is at most KeepBytes (the open segment is not counted). 0: no
	// size bound.
	KeepBytes int64
	// Always records from New on and ignores the Switch (neither follows
	// nor writes it).
	Always bool
	// Switch is the external on/off state the recorder follows (polled
	// every Poll) and writes when switched through the API. Default: the
	// Redis switch (RedisSwitch) when the client's cache is a
	// rediscache.Cache, else none.
	Switch Switch
	// Poll is how often the Switch is read. Default DefaultPoll (500 ms),
	// so a change is followed within about half a second; at once when
	// the Switch is a Notifier that signals it (RedisSwitch with keyspace
	// notifications on).
	Poll time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults(cl *chrysalis.Client) (Options, error) {
	if o.Dir == "" {
		return o, errors.New("record: no Dir")
	}
	if o.Segment == 0 {
		o.Segment = DefaultSegment
	}
	switch {
	case o.PreRoll == 0:
		o.PreRoll = DefaultPreRoll
	case o.PreRoll < 0:
		o.PreRoll = 0
	}
	if o.Poll == 0 {
		o.Poll = DefaultPoll
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Switch == nil {
		if rc, ok := cl.Cache().(*rediscache.Cache); ok {
			o.Switch = RedisSwitch(rc.Client())
		}
	}
	switch {
	case o.Segment < 0:
		return o, fmt.Errorf("record: negative Segment %v", o.Segment)
	case o.PostRoll < 0:
		return o, fmt.Errorf("record: negative PostRoll %v", o.PostRoll)
	case o.KeepAge < 0 || o.KeepBytes < 0:
		return o, errors.New("record: negative Keep")
	case o.Poll < 0:
		return o, fmt.Errorf("record: negative Poll %v", o.Poll)
	}
	return o, nil
}

// ErrUnknownCamera: a camera the Recorder was not created for.
var ErrUnknownCamera = errors.New("record: not a camera of this recorder")

// Recorder records one or several cameras. Its methods are safe for
// concurrent use. It runs one goroutine per camera (the follower, which
// owns the camera's open segment) and one for the Switch, until Close.
type Recorder struct {
	o      Options
	cams   map[string]*camRec
	order  []string
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New starts recording cameras of cl into o.Dir. It creates the camera
// directories, renames segments left by a killed recorder into place, and
// starts the followers: recording when o.Always, else when switched on.
// The Recorder does not own cl; Close it before cl.
func New(cl *chrysalis.Client, cameras []string, o Options) (*Recorder, error) {
	o, err := o.withDefaults(cl)
	if err != nil {
		return nil, err
	}
	if len(cameras) == 0 {
		return nil, errors.New("record: no camera")
	}
	r := &Recorder{o: o, cams: map[string]*camRec{}}
	for _, id := range cameras {
		if id == "" || strings.ContainsAny(id, `/\`) || id == "." || id == ".." {
			return nil, fmt.Errorf("record: camera id %q cannot name a directory", id)
		}
		if r.cams[id] != nil {
			continue
		}
		dir := filepath.Join(o.Dir, id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("record: %w", err)
		}
		c := &camRec{o: &r.o, cache: cl.Cache(), id: id, dir: dir, log: o.Logger.With("camera", id), wake: make(chan struct{}, 1)}
		if ar, ok := cl.Cache().(cache.AudioReader); ok {
			c.audio = &camAudio{ar: ar}
		}
		c.recover()
		r.cams[id] = c
		r.order = append(r.order, id)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	now := time.Now()
	for _, id := range r.order {
		c := r.cams[id]
		cam := cl.Camera(id, chrysalis.CameraOptions{})
		if o.Always {
			c.switchOn(now)
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer cam.Close()
			c.run(ctx, cam)
		}()
	}
	if o.Switch != nil && !o.Always {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.follow(ctx)
		}()
	}
	return r, nil
}

// Start switches every camera on at t (see StartCamera).
func (r *Recorder) Start(ctx context.Context, t time.Time) error {
	var errs []error
	for _, id := range r.order {
		errs = append(errs, r.StartCamera(ctx, id, t))
	}
	return errors.Join(errs...)
}

// Stop switches every camera off at t (see StopCamera).
func (r *Recorder) Stop(ctx context.Context, t time.Time) error {
	var errs []error
	for _, id := range r.order {
		errs = append(errs, r.StopCamera(ctx, id, t))
	}
	return errors.Join(errs...)
}

// StartCamera switches camera id on at t: recording starts at the keyframe
// at or before t - PreRoll, or, when that was recorded already, at the
// keyframe at or before the first packet not yet recorded (a segment must
// start at a keyframe, so switched off and on within a GOP, the new segment
// repeats less than one GOP of the previous one, under a name of its own),
// and continues until switched off; a pending switch-off is cancelled. It then
// writes the Switch (store "1"), unless Always; the recorder is switched
// even when that write fails (the error says so).
func (r *Recorder) StartCamera(ctx context.Context, id string, t time.Time) error {
	return r.set(ctx, id, true, t)
}

// StopCamera switches camera id off at t: recording ends with the last
// packet at or before t + PostRoll (or, when the camera sends nothing more,
// once that time has passed), finalising the segment. It then writes the
// Switch (store "0"), unless Always.
func (r *Recorder) StopCamera(ctx context.Context, id string, t time.Time) error {
	return r.set(ctx, id, false, t)
}

func (r *Recorder) set(ctx context.Context, id string, on bool, t time.Time) error {
	c := r.cams[id]
	if c == nil {
		return fmt.Errorf("%w: %q", ErrUnknownCamera, id)
	}
	c.swMu.Lock()
	defer c.swMu.Unlock()
	c.apply(on, t)
	if r.o.Switch == nil || r.o.Always {
		return nil
	}
	c.seen, c.seenOK = on, true
	if err := r.o.Switch.Set(ctx, id, on); err != nil {
		return fmt.Errorf("record: camera %q switched, but writing the switch failed: %w", id, err)
	}
	return nil
}

// follow polls the Switch every Poll, and at once when a Notifier signals,
// and applies its changes (at the time they are seen). A camera without
// the field is left as it is.
func (r *Recorder) follow(ctx context.Context) {
	tick := time.NewTicker(r.o.Poll)
	defer tick.Stop()
	var wake <-chan struct{}
	if n, ok := r.o.Switch.(Notifier); ok {
		w, stop := n.Notify(ctx, r.order)
		defer stop()
		wake = w
	}
	failing := false
	for {
		for _, id := range r.order {
			c := r.cams[id]
			c.swMu.Lock()
			on, ok, err := r.o.Switch.Get(ctx, id)
			switch {
			case err != nil:
				if ctx.Err() == nil && !failing {
					r.o.Logger.Warn("record: reading the switch failed", "camera", id, "err", err)
				}
				failing = true
			case ok && (!c.seenOK || on != c.seen):
				failing = false
				c.seen, c.seenOK = on, true
				c.log.Info("record: switch changed", "on", on)
				c.apply(on, time.Now())
			default:
				failing = false
			}
			c.swMu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-wake:
		}
	}
}

// Stats is a camera's recording state and counters.
type Stats struct {
	// Recording: switched on (or in its post-roll).
	Recording bool
	// Segments counts finished segments, Deleted those retention removed.
	Segments, Deleted int64
	// Packets counts packets written, Skipped those not written (before
	// a segment's first keyframe, or after a gap in the numbering up to
	// the next keyframe).
	Packets, Skipped int64
}

// Stats returns camera id's state and counters; ok is false for a camera
// not recorded.
func (r *Recorder) Stats(id string) (s Stats, ok bool) {
	c := r.cams[id]
	if c == nil {
		return s, false
	}
	return c.stats(), true
}

// Close stops the followers and finalises every open segment (the SIGTERM
// case), returning the errors of finalising. Idempotent; later calls
// return nil.
func (r *Recorder) Close() error {
	var err error
	r.once.Do(func() {
		r.cancel()
		r.wg.Wait()
		var errs []error
		for _, id := range r.order {
			errs = append(errs, r.cams[id].closeErr)
		}
		err = errors.Join(errs...)
	})
	return err
}
