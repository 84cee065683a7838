package av

import (
	"hash/fnv"
	"testing"

	"github.com/chryscloud/chrysalis-go/internal/testx"
)

func decodeThreads(t *testing.T) int { return testx.Threads(t, "chrysalis-dec") }

// OffThread decodes on a thread of the decoder's own: the same frames, in
// the same order, as decoding in the calling goroutine; the thread exists
// while the decoder is open and is gone after Close.
func TestOffThread(t *testing.T) {
	if !canReachCodecContext || !canReachPacket {
		t.Fatal("astiav's layout hides the codec context or packet pointer: OffThread would be ignored")
	}
	s := demux(t, testdata+"clip720.mp4")
	sums := func(o DecoderOptions) []uint64 {
		d := newTestDecoder(t, s.params, o)
		var conv Converter
		defer conv.Close()
		var buf []byte
		var out []uint64
		decodeAll(t, d, s.packets, func(f *Frame) error {
			var err error
			buf, _, _, _, err = conv.Convert(f, 0, 0, BGR24, buf)
			h := fnv.New64a()
			h.Write(buf)
			out = append(out, h.Sum64()^uint64(f.Pts()))
			return err
		})
		return out
	}
	want := sums(DecoderOptions{Threads: 1})
	got := sums(DecoderOptions{Threads: 1, OffThread: true})
	if len(got) != len(s.packets) || len(got) != len(want) {
		t.Fatalf("%d frames off thread, %d on, %d packets", len(got), len(want), len(s.packets))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("frame %d differs off thread", i)
		}
	}

	// One thread per open decoder, none left after Close.
	before := decodeThreads(t)
	var ds []*Decoder
	for range 4 {
		d, err := NewDecoder(s.params, DecoderOptions{Threads: 1, OffThread: true})
		if err != nil {
			t.Fatal(err)
		}
		if d.snd == nil {
			t.Fatal("OffThread: no decode thread")
		}
		ds = append(ds, d)
	}
	if n := decodeThreads(t); n != before+4 {
		t.Errorf("%d decode threads with 4 decoders open, %d before: want 4 more", n, before)
	}
	for _, d := range ds {
		d.Close()
		d.Close() // idempotent
	}
	if n := decodeThreads(t); n != before {
		t.Errorf("%d decode threads after closing the decoders, %d before: threads left running", n, before)
	}
}
