package media

import (
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

// Packet is one encoded video packet, the VideoFrame message of the edge
// proxy's layout. In a cache, ID and Timestamp are the cache's; a source
// without a cache (source.URL) numbers its own.
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

// NumberGap reports whether a packet numbered next does not follow one
// numbered prev: packets were lost between them (an outage, a trim, a
// drop). Number 0 means the writer does not number packets (or this is
// its first): no gap can be seen then. Every reader of the cache uses this
// one rule to decide when to skip to the next keyframe.
func NumberGap(prev, next int64) bool { return prev > 0 && next > 0 && next != prev+1 }
