package rediscache

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"syscall"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/chryscloud/chrysalis-go/cache"
)

var syscallECONNREFUSED = syscall.ECONNREFUSED

func slicesSort(s []string) { slices.Sort(s) }

var errWire = errors.New("corrupt VideoFrame")

// decodeVideoFrame parses a VideoFrame protobuf. Unlike proto.Unmarshal it
// does not copy the packet bytes: Data and Extradata alias b, which must stay
// unmodified (it is the immutable string go-redis returned).
func decodeVideoFrame(b []byte) (cache.Packet, error) {
	var p cache.Packet
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return p, fmt.Errorf("%w: %v", errWire, protowire.ParseError(n))
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return p, fmt.Errorf("%w: %v", errWire, protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case 1:
				p.Width = int(int64(v))
			case 2:
				p.Height = int(int64(v))
			case 4:
				p.Timestamp = int64(v)
			case 5:
				p.Keyframe = v != 0
			case 6:
				p.PTS = int64(v)
			case 7:
				p.DTS = int64(v)
			case 9:
				p.Corrupt = v != 0
			case 13:
				p.Number = int64(v)
			case 14:
				p.KeyframeNumber = int64(v)
			}
		case protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return p, fmt.Errorf("%w: %v", errWire, protowire.ParseError(n))
			}
			b = b[n:]
			if num == 10 {
				p.TimeBase = math.Float64frombits(v)
			}
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return p, fmt.Errorf("%w: %v", errWire, protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case 3:
				p.Data = v[:len(v):len(v)]
			case 8:
				p.FrameType = string(v)
			case 12:
				p.DeviceID = string(v)
			case 15:
				p.Extradata = v[:len(v):len(v)]
			case 16:
				p.CodecName = string(v)
			case 17:
				p.PixFmt = string(v)
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return p, fmt.Errorf("%w: %v", errWire, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return p, nil
}
