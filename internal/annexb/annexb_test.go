package annexb_test

import (
	"testing"

	"github.com/chryscloud/chrysalis-go/internal/annexb"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
)

// TestClips checks, against ffprobe, the codec, the keyframe flags of every
// access unit and the SPS size of the H.264 and HEVC clips in Annex B.
func TestClips(t *testing.T) {
	for _, name := range []string{"clip720.mp4", "hevc720.mp4", "bframes720.mp4", "clip1080.mp4"} {
		t.Run(name, func(t *testing.T) {
			c := testclip.Load(t, name)
			a := testclip.LoadAnnexB(t, name)
			for i, u := range a.Units {
				if got := annexb.Detect(u); got != c.Codec {
					t.Fatalf("unit %d: Detect = %q, want %q", i, got, c.Codec)
				}
				if got := annexb.Keyframe(u); got != c.Packets[i].Key {
					t.Fatalf("unit %d: Keyframe = %v, ffprobe says %v", i, got, c.Packets[i].Key)
				}
				if !c.Packets[i].Key {
					continue
				}
				sz, err := annexb.SPSSize(c.Codec, u)
				if err != nil || sz.Width != c.Width || sz.Height != c.Height || sz.PixFmt != c.PixFmt {
					t.Fatalf("unit %d: SPS size %+v err %v, want %dx%d %s", i, sz, err, c.Width, c.Height, c.PixFmt)
				}
				if len(annexb.ParamSets(c.Codec, u)) == 0 {
					t.Fatalf("keyframe %d: no parameter sets", i)
				}
			}
		})
	}
}

func TestNoSPS(t *testing.T) {
	if _, err := annexb.SPSSize("h264", []byte{0, 0, 0, 1, 0x41, 0x9a}); err != annexb.ErrNoSPS {
		t.Fatalf("err %v, want ErrNoSPS", err)
	}
	if annexb.Keyframe([]byte("pkt-1")) || annexb.Detect([]byte("pkt-1")) != "" {
		t.Fatal("bytes without a start code read as a unit")
	}
}
