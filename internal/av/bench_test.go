package av

import "testing"

// BenchmarkDecodeBGR1080 decodes the 100 frames of a 1080p H.264 clip and
// converts each to BGR24 (one op = the whole clip).
func BenchmarkDecodeBGR1080(b *testing.B) {
	s := demux(b, testdata+"clip1080.mp4")
	d := newTestDecoder(b, s.params, DecoderOptions{})
	var conv Converter
	defer conv.Close()

	var buf []byte
	frames := 0
	toBGR := func(f *Frame) error {
		var err error
		buf, _, _, _, err = conv.Convert(f, 0, 0, BGR24, buf)
		frames++
		return err
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range s.packets {
			if err := d.Decode(p.data, p.pts, p.dts, p.key, toBGR); err != nil {
				b.Fatal(err)
			}
		}
		if err := d.Flush(toBGR); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
}
