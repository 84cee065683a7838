package av

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"testing"

	"github.com/asticode/go-astiav"
	"go.uber.org/goleak"

	"github.com/chryscloud/chrysalis-go/internal/avin"
)

func TestMain(m *testing.M) {
	// The garbage-packet tests make FFmpeg log loudly; keep test output clean.
	astiav.SetLogLevel(astiav.LogLevelFatal)
	// Nothing the decoders start (their delivery, frame threading callbacks
	// into Go) may outlive the tests.
	goleak.VerifyTestMain(m)
}

const testdata = "../../testdata/"

// testPacket is one encoded packet as the frame cache would hold it.
type testPacket struct {
	data     []byte
	pts, dts int64
	key      bool
}

type testStream struct {
	params  CodecParams
	packets []testPacket
}

// demux reads every packet of the first video stream of path.
func demux(tb testing.TB, path string) testStream {
	tb.Helper()
	fc := astiav.AllocFormatContext()
	if fc == nil {
		tb.Fatal("AllocFormatContext failed")
	}
	defer fc.Free()
	if err := fc.OpenInput(path, nil, nil); err != nil {
		tb.Fatalf("opening %s: %v", path, err)
	}
	defer fc.CloseInput()
	if err := fc.FindStreamInfo(nil); err != nil {
		tb.Fatalf("finding stream info of %s: %v", path, err)
	}
	st := avin.VideoStream(fc)
	if st == nil {
		tb.Fatalf("%s: no video stream", path)
	}
	cp := st.CodecParameters()
	ts := testStream{params: CodecParams{
		Name:      astiav.FindDecoder(cp.CodecID()).Name(),
		Width:     cp.Width(),
		Height:    cp.Height(),
		PixFmt:    cp.PixelFormat().Name(),
		Extradata: cp.ExtraData(),
	}}

	pkt := astiav.AllocPacket()
	defer pkt.Free()
	for {
		if err := fc.ReadFrame(pkt); err != nil {
			if errors.Is(err, astiav.ErrEof) {
				break
			}
			tb.Fatalf("reading %s: %v", path, err)
		}
		if pkt.StreamIndex() == st.Index() {
			ts.packets = append(ts.packets, testPacket{
				data: pkt.Data(), // a Go copy
				pts:  pkt.Pts(),
				dts:  pkt.Dts(),
				key:  pkt.Flags().Has(astiav.PacketFlagKey),
			})
		}
		pkt.Unref()
	}
	return ts
}

// refFrames streams the frames decoded by the ffmpeg CLI as raw pix_fmt
// images, one per call to next.
type refFrames struct {
	cmd *exec.Cmd
	r   *bufio.Reader
}

func startFFmpeg(tb testing.TB, path, pixFmt string) *refFrames {
	tb.Helper()
	return startFFmpegArgs(tb, path, "-pix_fmt", pixFmt)
}

// startFFmpegArgs is startFFmpeg with extra output options.
func startFFmpegArgs(tb testing.TB, path string, args ...string) *refFrames {
	tb.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		// As the other helpers (testredis, testclip, testx): CI must
		// exercise every path, so there a missing tool fails the test.
		if os.Getenv("CI") == "true" {
			tb.Fatalf("ffmpeg CLI not found and CI=true: %v", err)
		}
		tb.Skip("ffmpeg CLI not found; run `make deps`")
	}
	args = append([]string{"-v", "error", "-i", path, "-f", "rawvideo"}, args...)
	cmd := exec.Command(ffmpeg, append(args, "-")...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	rf := &refFrames{cmd: cmd, r: bufio.NewReaderSize(out, 1<<20)}
	tb.Cleanup(func() {
		_, _ = io.Copy(io.Discard, rf.r)
		_ = cmd.Wait()
	})
	return rf
}

// next fills buf with the next reference frame; it returns io.EOF at the end.
func (rf *refFrames) next(buf []byte) error {
	_, err := io.ReadFull(rf.r, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("truncated reference frame")
	}
	return err
}

// psnr returns the PSNR in dB of b against a (same length), +Inf if equal.
func psnr(a, b []byte) float64 {
	if bytes.Equal(a, b) { // fast path, the loop below is slow under -race
		return math.Inf(1)
	}
	var sum uint64
	for i := range a {
		d := int(a[i]) - int(b[i])
		sum += uint64(d * d)
	}
	if sum == 0 {
		return math.Inf(1)
	}
	mse := float64(sum) / float64(len(a))
	return 10 * math.Log10(255*255/mse)
}

// decodeAll feeds packets to d, flushes it, and calls fn for every frame.
func decodeAll(tb testing.TB, d *Decoder, pkts []testPacket, fn func(*Frame) error) {
	tb.Helper()
	for i, p := range pkts {
		if err := d.Decode(p.data, p.pts, p.dts, p.key, fn); err != nil {
			tb.Fatalf("packet %d: %v", i, err)
		}
	}
	if err := d.Flush(fn); err != nil {
		tb.Fatalf("flush: %v", err)
	}
}

func newTestDecoder(tb testing.TB, p CodecParams, o DecoderOptions) *Decoder {
	tb.Helper()
	d, err := NewDecoder(p, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}
