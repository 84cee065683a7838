package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/annexb"
	"github.com/chryscloud/chrysalis-go/internal/avin"
)

// The segment index: next to each segment <name>.mp4 the recorder writes
// <name>.idx, one JSON line per packet written, in file order: the packet's
// cache id and every field of it but the data (which is in the MP4). A line
// is written (one write call, unbuffered) as the packet is handed to the
// MP4 writer, before the fragment holding it can reach the file, so after a
// SIGKILL the index has at least the packets the segment plays; recovery
// cuts it to them. The index is what List reads, and what turns an
// archived packet back into the cache's packet (id, timestamps, number)
// for an export from the archive.

// idxLine is one packet of a segment index.
type idxLine struct {
	ID   string `json:"id"`
	Key  bool   `json:"k,omitempty"`
	Size int    `json:"n"`
	// AnnexB: the cached data was Annex-B; the MP4 holds it length-prefixed.
	AnnexB    bool    `json:"ab,omitempty"`
	Timestamp int64   `json:"ts,omitempty"`
	PTS       int64   `json:"pts,omitempty"`
	DTS       int64   `json:"dts,omitempty"`
	TimeBase  float64 `json:"tb,omitempty"`
	Number    int64   `json:"num,omitempty"`
	KeyNumber int64   `json:"kn,omitempty"`
	Width     int     `json:"w,omitempty"`
	Height    int     `json:"h,omitempty"`
	FrameType string  `json:"ft,omitempty"`
	Corrupt   bool    `json:"bad,omitempty"`
	DeviceID  string  `json:"dev,omitempty"`
	Extradata []byte  `json:"x,omitempty"`
	Codec     string  `json:"c,omitempty"`
	PixFmt    string  `json:"pf,omitempty"`

	id cache.ID
}

func lineOf(p cache.Packet) idxLine {
	return idxLine{ID: p.ID.String(), Key: p.Keyframe, Size: len(p.Data), AnnexB: annexb.IsAnnexB(p.Data),
		Timestamp: p.Timestamp, PTS: p.PTS, DTS: p.DTS, TimeBase: p.TimeBase, Number: p.Number,
		KeyNumber: p.KeyframeNumber, Width: p.Width, Height: p.Height, FrameType: p.FrameType, Corrupt: p.Corrupt,
		DeviceID: p.DeviceID, Extradata: p.Extradata, Codec: p.CodecName, PixFmt: p.PixFmt}
}

// packet rebuilds the cached packet from its line and its data as read
// from the MP4.
func (l idxLine) packet(data []byte) cache.Packet {
	if l.AnnexB {
		data = toAnnexB(data)
	}
	return cache.Packet{ID: l.id, Timestamp: l.Timestamp, Keyframe: l.Key, Data: data, PTS: l.PTS, DTS: l.DTS,
		TimeBase: l.TimeBase, Width: l.Width, Height: l.Height, FrameType: l.FrameType, Corrupt: l.Corrupt,
		DeviceID: l.DeviceID, Number: l.Number, KeyframeNumber: l.KeyNumber, Extradata: l.Extradata,
		CodecName: l.Codec, PixFmt: l.PixFmt}
}

// toAnnexB turns 4-byte length-prefixed NAL units (what the MP4 muxer made
// of Annex-B input) back into start-code form.
func toAnnexB(b []byte) []byte {
	out := make([]byte, 0, len(b)+16)
	for len(b) >= 4 {
		n := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		if n > len(b)-4 {
			break
		}
		out = append(out, 0, 0, 0, 1)
		out = append(out, b[4:4+n]...)
		b = b[4+n:]
	}
	return out
}

// indexPath is segment path's index.
func indexPath(mp4Path string) string { return strings.TrimSuffix(mp4Path, ".mp4") + ".idx" }

// indexWriter appends lines to a segment's index, one write each.
type indexWriter struct {
	f   *os.File
	buf []byte
}

func createIndex(path string) (*indexWriter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &indexWriter{f: f}, nil
}

func (x *indexWriter) add(p cache.Packet) error {
	b, err := json.Marshal(lineOf(p))
	if err != nil {
		return err
	}
	x.buf = append(append(x.buf[:0], b...), '\n')
	_, err = x.f.Write(x.buf)
	return err
}

func (x *indexWriter) close() error { return x.f.Close() }

// readIndex reads a segment index; a last line cut short (a kill during
// its write) is ignored.
func readIndex(path string) ([]idxLine, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if i := bytes.LastIndexByte(b, '\n'); i+1 < len(b) {
		b = b[:i+1] // the cut last line
	}
	var out []idxLine
	for n := 1; len(b) > 0; n++ {
		line, rest, _ := bytes.Cut(b, []byte("\n"))
		b = rest
		var l idxLine
		err := json.Unmarshal(line, &l)
		if err == nil {
			l.id, err = cache.ParseID(l.ID)
		}
		if err != nil {
			return nil, fmt.Errorf("record: %s line %d: %w", path, n, err)
		}
		out = append(out, l)
	}
	return out, nil
}

// demuxed is a packet read back from a segment.
type demuxed struct {
	data []byte
	key  bool
}

// readSegment demuxes a segment's video packets. A file cut short (a
// killed recorder) yields the packets of its complete fragments.
func readSegment(path string) ([]demuxed, error) {
	fc := astiav.AllocFormatContext()
	if fc == nil {
		return nil, errors.New("record: allocating a format context failed")
	}
	defer fc.Free()
	if err := fc.OpenInput(path, nil, nil); err != nil {
		return nil, fmt.Errorf("record: opening %s: %w", path, err)
	}
	defer fc.CloseInput()
	st := avin.VideoStream(fc)
	if st == nil {
		return nil, fmt.Errorf("record: %s has no video stream", path)
	}
	pkt := astiav.AllocPacket()
	if pkt == nil {
		return nil, errors.New("record: allocating a packet failed")
	}
	defer pkt.Free()
	var out []demuxed
	for {
		if err := fc.ReadFrame(pkt); err != nil {
			break // the end, or where a killed recorder's file stops
		}
		if pkt.StreamIndex() == st.Index() {
			out = append(out, demuxed{data: pkt.Data(), key: pkt.Flags().Has(astiav.PacketFlagKey)})
		}
		pkt.Unref()
	}
	return out, nil
}

// match pairs a segment's demuxed packets with its index lines, in order,
// up to the first disagreement (a packet cut short by a kill, or lines of
// packets that never reached the file).
func match(pkts []demuxed, lines []idxLine) int {
	n := 0
	for n < len(pkts) && n < len(lines) {
		l := lines[n]
		if pkts[n].key != l.Key || (!l.AnnexB && len(pkts[n].data) != l.Size) {
			break
		}
		n++
	}
	return n
}

// SegmentInfo is one finished segment as the index describes it.
type SegmentInfo struct {
	// Path is the MP4 file.
	Path string `json:"path"`
	// Start and End are the cache times of the first and last packet.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// First and Last are their cache ids.
	First cache.ID `json:"-"`
	Last  cache.ID `json:"-"`
	// Frames and Keyframes count the packets.
	Frames    int64 `json:"frames"`
	Keyframes int64 `json:"keyframes"`
	// Size is the MP4 file's size in bytes.
	Size int64 `json:"size"`
}

// ErrNoIndex: a segment has no index (it was written before the index
// existed, or the index was removed).
var ErrNoIndex = errors.New("record: segment has no index")

// List lists camera's finished segments in the archive dir (Options.Dir)
// from their indexes, oldest first. A segment whose index is missing or
// unreadable is left out and reported in the returned error (wrapping
// ErrNoIndex when missing), with the others listed.
func List(dir, camera string) ([]SegmentInfo, error) {
	segs, err := Segments(filepath.Join(dir, camera), camera)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	var out []SegmentInfo
	var errs []error
	for _, s := range segs {
		si, err := info(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, si)
	}
	return out, errors.Join(errs...)
}

func info(s Segment) (SegmentInfo, error) {
	lines, err := readIndex(indexPath(s.Path))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return SegmentInfo{}, fmt.Errorf("%w: %s", ErrNoIndex, s.Path)
	case err != nil:
		return SegmentInfo{}, err
	case len(lines) == 0:
		return SegmentInfo{}, fmt.Errorf("record: %s: empty index", s.Path)
	}
	si := SegmentInfo{Path: s.Path, Size: s.Size, First: lines[0].id, Last: lines[len(lines)-1].id,
		Frames: int64(len(lines))}
	si.Start, si.End = si.First.Time().UTC(), si.Last.Time().UTC()
	for _, l := range lines {
		if l.Key {
			si.Keyframes++
		}
	}
	return si, nil
}

// reconcile cuts index ip of a segment file left by a killed recorder to
// the packets the file plays, and returns how many it plays. A file that
// cannot be read plays none.
func reconcile(mp4Path, ip string) (int, error) {
	pkts, err := readSegment(mp4Path)
	if err != nil {
		// Unparseable plays none (a killed recorder's file before its first
		// fragment); a file that cannot be read at all (permissions, I/O)
		// is kept and the error said: it may hold a recording.
		if rerr := readable(mp4Path); rerr != nil {
			return 0, rerr
		}
		return 0, nil
	}
	lines, err := readIndex(ip)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	n := match(pkts, lines)
	if n == 0 {
		return 0, nil
	}
	var buf bytes.Buffer
	for _, l := range lines[:n] {
		b, err := json.Marshal(l)
		if err != nil {
			return 0, err
		}
		buf.Write(append(b, '\n'))
	}
	tmp := ip + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return 0, err
	}
	return n, os.Rename(tmp, ip)
}

// readable reports an error when the file at p cannot be opened or read.
func readable(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.Read(b[:]); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("record: reading %s: %w", p, err)
	}
	return nil
}

func removeIfExists(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
