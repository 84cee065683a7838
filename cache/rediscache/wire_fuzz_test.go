package rediscache

import (
	"bytes"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/pb"
)

// FuzzDecodeVideoFrame: the hand-written wire reader never panics, and on
// every input the generated protobuf code accepts, it accepts it too and
// reads the same fields.
func FuzzDecodeVideoFrame(f *testing.F) {
	for _, p := range []cache.Packet{
		{Width: 1280, Height: 720, Data: []byte{0, 0, 0, 1, 0x65, 1, 2}, Timestamp: 1_760_000_000_000, Keyframe: true, PTS: 3, DTS: 1,
			TimeBase: 1.0 / 90000, Number: 7, KeyframeNumber: 1, Extradata: []byte{1, 0x64}, CodecName: "h264", PixFmt: "yuv420p"},
		{Width: -1, Height: 0, PTS: -5, DTS: math.MinInt64},
		{},
	} {
		b, err := proto.Marshal(toPB("cam", &p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x08})                   // a tag without its varint
	f.Add([]byte{0x1a, 0xff, 0xff, 0x03}) // bytes longer than the input
	f.Add([]byte{0x0b, 0x0c})             // an empty group
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		p, err := decodeVideoFrame(in)
		var m pb.VideoFrame
		if perr := proto.Unmarshal(b, &m); perr != nil {
			return
		}
		if err != nil {
			t.Fatalf("protobuf accepts %x, decodeVideoFrame says %v", b, err)
		}
		if int64(p.Width) != m.Width || int64(p.Height) != m.Height || !bytes.Equal(p.Data, m.Data) || p.Timestamp != m.Timestamp ||
			p.Keyframe != m.IsKeyframe || p.PTS != m.Pts || p.DTS != m.Dts || p.Number != m.Packet || p.KeyframeNumber != m.Keyframe ||
			!bytes.Equal(p.Extradata, m.Extradata) || p.CodecName != m.CodecName || p.PixFmt != m.PixFmt ||
			math.Float64bits(p.TimeBase) != math.Float64bits(m.TimeBase) {
			t.Fatalf("%x: decodeVideoFrame %+v, protobuf %+v", b, p, &m)
		}
	})
}
