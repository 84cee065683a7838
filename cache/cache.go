// Package cache defines the frame cache: a bounded, per-camera log of encoded
// video packets with a keyframe index and the codec parameters, as written by
// an ingest (the streaming node) and read by the client SDK.
//
// Two implementations share one contract (see package cachetest):
//   - [Memory], the in-process cache, the embedded default;
//   - package cache/rediscache, Redis Streams in the Chrysalis edge proxy's
//     layout, so caches written by the edge proxy can be read and ours by it.
//
// Ownership: a Packet's Data passed to Append belongs to the cache from then
// on; the caller must not modify it. Packets returned by reads share their
// Data with the cache and with other readers: treat it as read-only.
package cache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ID is a cache entry id, Redis-style "<ms>-<seq>". MS is the frame's cache
// timestamp in UTC milliseconds since the epoch; Seq orders entries that
// share a millisecond.
type ID struct {
	MS  uint64
	Seq uint64
}

// Well-known ids for open range ends.
var (
	MinID = ID{}
	MaxID = ID{MS: ^uint64(0), Seq: ^uint64(0)}
)

// String formats the id as "<ms>-<seq>".
func (id ID) String() string {
	return strconv.FormatUint(id.MS, 10) + "-" + strconv.FormatUint(id.Seq, 10)
}

// Time is the id's millisecond as a UTC time.
func (id ID) Time() time.Time { return time.UnixMilli(int64(id.MS)).UTC() }

// IsZero reports whether id is the zero id (before every entry).
func (id ID) IsZero() bool { return id == ID{} }

// Compare returns -1, 0 or +1 as id sorts before, equal to or after o.
func (id ID) Compare(o ID) int {
	switch {
	case id.MS < o.MS:
		return -1
	case id.MS > o.MS:
		return 1
	case id.Seq < o.Seq:
		return -1
	case id.Seq > o.Seq:
		return 1
	}
	return 0
}

// Next is the smallest id after id.
func (id ID) Next() ID {
	if id.Seq == ^uint64(0) {
		return ID{MS: id.MS + 1}
	}
	return ID{MS: id.MS, Seq: id.Seq + 1}
}

// ParseID parses "<ms>-<seq>" or "<ms>" (seq 0).
func ParseID(s string) (ID, error) {
	ms, seq, found := strings.Cut(s, "-")
	m, err := strconv.ParseUint(ms, 10, 64)
	if err != nil {
		return ID{}, fmt.Errorf("cache: bad entry id %q", s)
	}
	var q uint64
	if found {
		if q, err = strconv.ParseUint(seq, 10, 64); err != nil {
			return ID{}, fmt.Errorf("cache: bad entry id %q", s)
		}
	}
	return ID{MS: m, Seq: q}, nil
}

// IDAt is the first id of the millisecond containing t.
func IDAt(t time.Time) ID { return ID{MS: uint64(t.UnixMilli())} }

// Packet is one encoded video packet in the cache, the VideoFrame message of
// the edge proxy's layout.
type Packet struct {
	// ID is assigned by Append.
	ID ID
	// Timestamp is the wall-clock capture time in UTC ms; Append uses it as
	// the millisecond of the id when it is after the previous entry.
	Timestamp int64
	Keyframe  bool
	// Data is the encoded packet (AVCC or Annex-B, as the input gave it).
	// Read-only and shared; see the package comment.
	Data     []byte
	PTS, DTS int64
	// TimeBase is the pts/dts unit in seconds (1/90000 for 90 kHz).
	TimeBase      float64
	Width, Height int
	FrameType     string
	Corrupt       bool
	DeviceID      string
	// Number counts packets since the ingest started; KeyframeNumber counts
	// keyframes.
	Number, KeyframeNumber int64
	Extradata              []byte
	CodecName              string
	PixFmt                 string
}

// Codec is the camera's codec parameters (the VideoCodec message).
type Codec struct {
	Name          string
	LongName      string
	Width, Height int
	PixFmt        string
	// Extradata is the SPS/PPS (avcC/hvcC or Annex-B) to set on a decoder.
	Extradata []byte
}

// Stats is what Probe needs from the cache for one camera.
type Stats struct {
	// First and Last are the oldest and newest packet ids.
	First, Last ID
	// Frames and Keyframes are the packet and keyframe-index lengths.
	Frames, Keyframes int64
}

// Retention bounds a camera's cache. Zero values mean unbounded; set at least
// one. When both are set, both apply.
type Retention struct {
	// MaxAge trims entries older than the newest entry's time minus MaxAge
	// (XADD MINID).
	MaxAge time.Duration
	// MaxLen trims to the newest MaxLen packets (XADD MAXLEN).
	MaxLen int64
}

// Cache is the frame-cache contract. All methods are safe for concurrent
// use. A camera that has never been written is [ErrUnknownCamera] for
// reads.
type Cache interface {
	// Append adds one packet, keeping the keyframe index consistent (a
	// keyframe's index entry sorts at or before its packet), applies the
	// retention, and returns the id it assigned.
	Append(ctx context.Context, camera string, p *Packet) (ID, error)
	// SetCodec stores the camera's codec parameters.
	SetCodec(ctx context.Context, camera string, c Codec) error
	// Codec returns the camera's codec parameters.
	Codec(ctx context.Context, camera string) (Codec, error)
	// Range returns up to count packets with start <= id <= end, oldest
	// first (count <= 0: all).
	Range(ctx context.Context, camera string, start, end ID, count int64) ([]Packet, error)
	// RevRange returns up to count packets with start <= id <= end, newest
	// first.
	RevRange(ctx context.Context, camera string, end, start ID, count int64) ([]Packet, error)
	// Keyframes returns up to count keyframe packets with start <= id <= end,
	// oldest first, found through the keyframe index (non-keyframe packets
	// are not fetched).
	Keyframes(ctx context.Context, camera string, start, end ID, count int64) ([]Packet, error)
	// KeyframeAtOrBefore returns the newest keyframe packet with id <= at.
	// It returns ErrNotFound when there is none.
	KeyframeAtOrBefore(ctx context.Context, camera string, at ID) (Packet, error)
	// ReadAfter returns up to count packets with id > after, oldest first,
	// waiting up to block for the first one when there is none yet. An empty
	// result with a nil error means nothing arrived in time.
	ReadAfter(ctx context.Context, camera string, after ID, count int64, block time.Duration) ([]Packet, error)
	// Stats returns the camera's first/last ids and lengths.
	Stats(ctx context.Context, camera string) (Stats, error)
	// Cameras lists the cameras that have codec info in the cache.
	Cameras(ctx context.Context) ([]string, error)
	// Close releases the cache. It is idempotent.
	Close() error
}

// Errors callers branch on.
var (
	// ErrUnknownCamera: nothing was ever cached for the camera.
	ErrUnknownCamera = errors.New("unknown camera")
	// ErrEmpty: the camera is known but holds no packets.
	ErrEmpty = errors.New("cache is empty")
	// ErrNotFound: no entry matches the query (for example no keyframe
	// before a time).
	ErrNotFound = errors.New("not found")
	// ErrClosed: the cache was closed.
	ErrClosed = errors.New("cache closed")
)

// CameraError wraps a per-camera error with the camera id.
type CameraError struct {
	Camera string
	Err    error
}

func (e *CameraError) Error() string { return fmt.Sprintf("camera %q: %v", e.Camera, e.Err) }
func (e *CameraError) Unwrap() error { return e.Err }

func camErr(cam string, err error) error { return &CameraError{Camera: cam, Err: err} }

// NextID returns the id Append assigns for a packet stamped ms after last:
// <ms>-0 when ms is later, otherwise <last.ms>-<last.seq+1>, so ids always
// increase even if the clock steps back.
func NextID(last ID, ms uint64) ID {
	if ms > last.MS {
		return ID{MS: ms}
	}
	return last.Next()
}

// ErrBadTime: a time outside what a cache id can name: the zero time, a time
// before 1970-01-01 UTC (ids are unsigned ms since the epoch) or after the
// year 9999. Lookups reject it instead of wrapping it to a huge id.
var ErrBadTime = errors.New("bad time: must be between 1970-01-01 and 9999-12-31 UTC")

// maxTime is the last millisecond a lookup accepts.
var maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC)

// CheckTime returns an error wrapping ErrBadTime when t is the zero time,
// before the epoch or after year 9999.
func CheckTime(t time.Time) error {
	if t.IsZero() || t.Before(time.Unix(0, 0)) || t.After(maxTime) {
		return fmt.Errorf("%w (got %s)", ErrBadTime, t.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// IDOf is CheckTime followed by IDAt: the first id of t's millisecond.
func IDOf(t time.Time) (ID, error) {
	if err := CheckTime(t); err != nil {
		return ID{}, err
	}
	return IDAt(t), nil
}
