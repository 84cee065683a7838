package sink_test

import (
	"context"
	"path/filepath"
	"testing"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/sink"
)

// The recorder's remux writes the cached packets, not a re-encode: the
// file's video packets equal the source clip's byte for byte, in order,
// none missing, none repeated (both read by ffprobe). Decoded pixels being
// equal (TestVideoFileRemux) would not see a packet replaced by another
// that decodes alike, or side data rewritten.
func TestVideoFileRemuxPacketsByteExact(t *testing.T) {
	for _, name := range []string{"clip720.mp4", "bframes720.mp4", "hevc720.mp4"} {
		t.Run(name, func(t *testing.T) {
			f := loadClip(t, name)
			imgs := f.images(t, chrysalis.CameraOptions{}, 0, 110)
			out := filepath.Join(t.TempDir(), "out.mp4")
			v := sink.VideoFile(out, sink.VideoOptions{})
			if err := v.Run(context.Background(), feed(context.Background(), imgs)); err != nil {
				t.Fatal(err)
			}
			if st := v.Stats(); st.Mode != sink.Remux {
				t.Fatalf("stats %+v, want a remux", st)
			}
			got := testclip.Load(t, out).Data()
			testclip.SamePackets(t, name+" recorded vs source", got, f.clip.Data())
			t.Logf("%s: %s, byte for byte", name, testclip.Describe(got))
		})
	}
}
