package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/media"
)

// DetectionRecord is a frame's detections as data: one line of
// DetectionsJSON, the "data" field of an entry of DetectionsRedis.
type DetectionRecord struct {
	// Camera is the camera id.
	Camera string `json:"camera"`
	// Time is the frame's time (UTC); TimeMS the same in unix ms.
	Time   time.Time `json:"time"`
	TimeMS int64     `json:"time_ms"`
	// FrameID is the frame's cache id "<ms>-<seq>".
	FrameID string `json:"frame_id"`
	// Width and Height are the frame's size.
	Width  int `json:"width"`
	Height int `json:"height"`
	// Detections are every model's results on the frame (boxes in each
	// model's own Width x Height).
	Detections []media.Detections `json:"detections"`
}

// Record returns img's detections as a record.
func Record(img *media.ChImage) DetectionRecord {
	ds := img.Detections
	if ds == nil {
		ds = []media.Detections{}
	}
	return DetectionRecord{Camera: img.Camera, Time: img.Time.UTC(), TimeMS: img.Time.UnixMilli(), FrameID: img.ID.String(),
		Width: img.Width, Height: img.Height, Detections: ds}
}

// DetectionsOptions configure the detection sinks.
type DetectionsOptions struct {
	// SkipEmpty leaves out frames on which no model found anything. By
	// default every frame a model ran on is written (an empty list says
	// "looked, found nothing"); frames no model ran on are always skipped.
	SkipEmpty bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (o DetectionsOptions) skip(img *media.ChImage) bool {
	if len(img.Detections) == 0 {
		return true
	}
	if !o.SkipEmpty {
		return false
	}
	for _, d := range img.Detections {
		if len(d.Objects) > 0 {
			return false
		}
	}
	return true
}

// DetectionsWriter is the sink returned by DetectionsJSON.
type DetectionsWriter struct {
	w       io.Writer
	o       DetectionsOptions
	written atomic.Int64
}

var _ flow.Sink = (*DetectionsWriter)(nil)

// DetectionsJSON returns a sink writing each frame's detections to w as
// one JSON line (a DetectionRecord), in one Write per line. A write error
// ends Run with it. The caller owns w (and closes it after Run).
func DetectionsJSON(w io.Writer, o DetectionsOptions) *DetectionsWriter {
	return &DetectionsWriter{w: w, o: o}
}

// Written counts the lines written.
func (s *DetectionsWriter) Written() int64 { return s.written.Load() }

// Run implements flow.Sink.
func (s *DetectionsWriter) Run(ctx context.Context, in <-chan flow.Image) error {
	if s.w == nil {
		return errors.New("sink: DetectionsJSON needs a writer")
	}
	var line []byte
	return each(ctx, in, func(img flow.Image) error {
		defer img.Release()
		if s.o.skip(img) {
			return nil
		}
		b, err := json.Marshal(Record(img))
		if err != nil {
			return fmt.Errorf("sink: detections of %s %s: %w", img.Camera, img.ID, err)
		}
		line = append(append(line[:0], b...), '\n')
		if _, err := s.w.Write(line); err != nil {
			return fmt.Errorf("sink: writing detections: %w", err)
		}
		s.written.Add(1)
		return nil
	})
}

// DetectionsKey is the Redis stream of a camera's detections,
// "detections_<camera>".
func DetectionsKey(camera string) string { return "detections_" + camera }

// RedisDetectionsOptions configure DetectionsRedis.
type RedisDetectionsOptions struct {
	DetectionsOptions
	// MaxLen bounds each stream (XADD MAXLEN). Default 10000 entries.
	MaxLen int64
	// Approx trims with MAXLEN ~ (cheaper: Redis trims whole nodes, so a
	// stream may hold a little more than MaxLen).
	Approx bool
	// Key names a camera's stream. Default DetectionsKey.
	Key func(camera string) string
}

// RedisDetections is the sink returned by DetectionsRedis.
type RedisDetections struct {
	rdb            redis.UniversalClient
	o              RedisDetectionsOptions
	log            *slog.Logger
	added, failed  atomic.Int64
	mu             sync.Mutex
	lastErr        error
	lastErrLogTime time.Time
}

var _ flow.Sink = (*RedisDetections)(nil)

// DetectionsRedis returns a sink adding each frame's detections to the
// camera's Redis stream (default "detections_<camera>"), bounded by XADD
// MAXLEN, for other services to consume with XREAD. Entry fields: camera,
// time_ms, frame_id, objects (how many boxes, all models) and data (the
// DetectionRecord as JSON; ParseDetections reads an entry back).
//
// A failed XADD (Redis down) does not stop the graph: it is counted
// (Failed), logged at most every 10 s, and the frame's detections are lost.
func DetectionsRedis(rdb redis.UniversalClient, o RedisDetectionsOptions) *RedisDetections {
	if o.MaxLen <= 0 {
		o.MaxLen = 10000
	}
	if o.Key == nil {
		o.Key = DetectionsKey
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &RedisDetections{rdb: rdb, o: o, log: o.Logger}
}

// Added counts entries added; Failed those lost to Redis errors.
func (s *RedisDetections) Added() int64 { return s.added.Load() }

// Failed counts frames whose XADD failed.
func (s *RedisDetections) Failed() int64 { return s.failed.Load() }

// Err returns the latest XADD error, nil if none.
func (s *RedisDetections) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// Run implements flow.Sink.
func (s *RedisDetections) Run(ctx context.Context, in <-chan flow.Image) error {
	if s.rdb == nil {
		return errors.New("sink: DetectionsRedis needs a Redis client")
	}
	return each(ctx, in, func(img flow.Image) error {
		defer img.Release()
		if s.o.skip(img) {
			return nil
		}
		rec := Record(img)
		b, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("sink: detections of %s %s: %w", img.Camera, img.ID, err)
		}
		n := 0
		for _, d := range rec.Detections {
			n += len(d.Objects)
		}
		err = s.rdb.XAdd(ctx, &redis.XAddArgs{
			Stream: s.o.Key(img.Camera), MaxLen: s.o.MaxLen, Approx: s.o.Approx,
			Values: []any{"camera", rec.Camera, "time_ms", rec.TimeMS, "frame_id", rec.FrameID, "objects", n, "data", b},
		}).Err()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.fail(err)
			return nil
		}
		s.added.Add(1)
		return nil
	})
}

func (s *RedisDetections) fail(err error) {
	n := s.failed.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr = err
	if time.Since(s.lastErrLogTime) >= 10*time.Second {
		s.lastErrLogTime = time.Now()
		s.log.Warn("detections to Redis: XADD failed, detections lost", "failed", n, "err", err)
	}
}

// ParseDetections reads back an entry of a DetectionsRedis stream (as
// XREAD/XRANGE return it).
func ParseDetections(m redis.XMessage) (DetectionRecord, error) {
	var rec DetectionRecord
	data, ok := m.Values["data"].(string)
	if !ok {
		return rec, fmt.Errorf("sink: detections entry %s has no data field", m.ID)
	}
	if err := json.Unmarshal([]byte(data), &rec); err != nil {
		return rec, fmt.Errorf("sink: detections entry %s: %w", m.ID, err)
	}
	if ms, _ := m.Values["time_ms"].(string); ms != strconv.FormatInt(rec.TimeMS, 10) {
		return rec, fmt.Errorf("sink: detections entry %s: time_ms %q does not match its data (%d)", m.ID, ms, rec.TimeMS)
	}
	return rec, nil
}
