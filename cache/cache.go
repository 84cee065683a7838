// Package cache defines the frame cache: a bounded, per-camera log of encoded
// video packets with a keyframe index and the codec parameters, as written by
// an ingest (the streaming node) and read by the client SDK.
//
// Two implementations share one contract (see package cachetest):
//   - [Memory], the in-process cache, the embedded default;
//   - package cache/rediscache, Redis Streams in the Chrysalis edge proxy's
//     layout, so caches written by the edge proxy can be read and ours by it,
//     or in the Chrysalis Cloud streaming node's layout (what the Python SDK
//     read), chosen or detected per camera.
//
// Ownership: a Packet's Data passed to Append belongs to the cache from then
// on; the caller must not modify it. Packets returned by reads share their
// Data with the cache and with other readers: treat it as read-only.
package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chryscloud/chrysalis-go/media"
)

// The vocabulary shared with every stage lives in package media; these
// aliases keep the cache's own names.
type (
	// ID is a cache entry id "<ms>-<seq>" (media.ID).
	ID = media.ID
	// Packet is one encoded video packet (media.Packet).
	Packet = media.Packet
	// Codec is a camera's codec parameters (media.Codec).
	Codec = media.Codec
)

// Well-known ids for open range ends.
var (
	MinID = media.MinID
	MaxID = media.MaxID
	// ErrBadTime: see media.ErrBadTime.
	ErrBadTime = media.ErrBadTime
)

// ParseID parses "<ms>-<seq>" or "<ms>" (seq 0).
func ParseID(s string) (ID, error) { return media.ParseID(s) }

// IDAt is the first id of the millisecond containing t.
func IDAt(t time.Time) ID { return media.IDAt(t) }

// IDOf is media.IDOf: IDAt after CheckTime.
func IDOf(t time.Time) (ID, error) { return media.IDOf(t) }

// CheckTime is media.CheckTime.
func CheckTime(t time.Time) error { return media.CheckTime(t) }

// NextID is media.NextID.
func NextID(last ID, ms uint64) ID { return media.NextID(last, ms) }

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
	// ErrMisconfigured: the cache refuses the request for a reason no
	// retry can fix (a Redis Cluster node dialled as a single server). An
	// ingest stops on it instead of buffering packets it can never write.
	ErrMisconfigured = errors.New("cache misconfigured")
	// ErrRefused: the cache refuses the operation for good, retrying will
	// not help (no permission on the keys, a key holding another kind of
	// value). Implementations wrap it in their own errors.
	ErrRefused = errors.New("cache refuses the operation")
)

// CameraError wraps a per-camera error with the camera id.
type CameraError struct {
	Camera string
	Err    error
}

func (e *CameraError) Error() string { return fmt.Sprintf("camera %q: %v", e.Camera, e.Err) }
func (e *CameraError) Unwrap() error { return e.Err }

func camErr(cam string, err error) error { return &CameraError{Camera: cam, Err: err} }
