package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/av"
	"github.com/chryscloud/chrysalis-go/internal/avin"
	"github.com/chryscloud/chrysalis-go/internal/pb"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

// replayLoops is how many times the 8 s hard clip is written back to back
// into the replayed window (and decoded by the file peer): 200 frames.
const replayLoops = 1

// BenchmarkReplayRedis replays a past window from Redis to BGR24 images
// (Camera.Past over the whole window: the hard clip, 200 frames, written
// with testclip.WriteRedis) and measures, in the same
// iteration (ABBA order, see versus), one peer reading the same content:
//
//   - vs_file: the project's raw file decode of the same clip (go-astiav
//     demux of the mp4, internal/av Decoder and Converter to BGR24, 3 times
//     in a row), the ceiling with no cache in the way. Target >= 0.9x.
//   - vs_pyav: bench/pyav_reader.py, a Python reader of the same Redis
//     cache with the Python SDK's stack and configuration: redis-py XRANGE,
//     protobuf, a PyAV h264 CodecContext with PyAV's default threading,
//     frame.to_ndarray(format='bgr24'). No target: not the strongest peer.
//   - vs_pyav_auto: the same reader with thread_type AUTO, the frame+slice
//     threading our decoder uses: the strongest Python peer. Target at
//     1080p >= 1.3x.
//
// Our decoder and the file peer use FFmpeg's automatic threading; every
// side touches every image. Metrics: frames/s of each side; x_vs_<peer> =
// our rate / the peer's, wall clock (the target's measure); cpu_x_vs_<peer>
// = the peer's CPU time per frame / ours (Redis's own CPU is not counted
// on either side). Ratios are medians over the iterations. ns/op counts
// our side only.
func BenchmarkReplayRedis(b *testing.B) {
	need(b, "ffmpeg", "ffprobe", "redis-server")
	srv := testredis.Start(b, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	rc, err := rediscache.Dial(context.Background(), rediscache.ConnOptions{URL: srv.URL()}, rediscache.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	cl := chrysalis.New(rc, chrysalis.Options{Logger: quiet})

	for _, r := range hardRes {
		path := hardClip(b, r.file)
		clip := loopClip(loadClip(b, path), replayLoops)
		clip.WriteRedis(b, rdb, r.name, t0, stepMS)
		n := len(clip.Packets)
		start, end := time.UnixMilli(t0), time.UnixMilli(testclip.MS(t0, n-1, stepMS))

		ours := func(b *testing.B) run {
			cam := cl.Camera(r.name, chrysalis.CameraOptions{Logger: quiet})
			defer cam.Close()
			frames := 0
			began, cpu0 := time.Now(), cpuTime(b)
			for img, err := range cam.Past(context.Background(), start, end) {
				if err != nil {
					b.Fatal(err)
				}
				touched += int64(img.Data[len(img.Data)/2])
				frames++
				img.Release()
			}
			return run{frames: frames, wall: time.Since(began), cpu: cpuTime(b) - cpu0}
		}

		b.Run(r.name+"/vs_file", func(b *testing.B) {
			x := versus(b, "file", n, ours, func(b *testing.B) run { return fileDecode(b, path, replayLoops) })
			if r.name == "1080p" {
				check(b, "ReplayRedis/1080p x our raw file decode (wall)", x, ">=", 0.95, "x")
			}
		})
		// vs_pyav is the Python SDK's configuration (PyAV's default
		// threading); vs_pyav_auto gives PyAV the same frame+slice
		// threading as ours.
		for _, v := range []struct{ name, threads string }{{"pyav", "default"}, {"pyav_auto", "AUTO"}} {
			b.Run(r.name+"/vs_"+v.name, func(b *testing.B) {
				py := pyav(b)
				desc := descriptorFile(b)
				x := versus(b, v.name, n, ours, func(b *testing.B) run {
					return py.read(b, srv.Addr(), r.name, desc, v.threads)
				})
				if r.name == "1080p" && v.name == "pyav_auto" {
					check(b, "ReplayRedis/1080p x PyAV thread_type AUTO (wall)", x, ">=", 1.3, "x")
				}
			})
		}
	}
}

// run is what one side measured over one replay: frames produced, wall
// time and the CPU time (user+sys, all threads) of its process over the
// same span.
type run struct {
	frames    int
	wall, cpu time.Duration
}

// versus runs ours and the peer twice per iteration in ABBA order (ours,
// peer, peer, ours), so that a machine getting slower or faster during
// the iteration weighs on both alike, and checks that every run produced
// want frames. It reports both frame rates over all runs; x_vs_<peer>, the
// median over the iterations of our rate / the peer's (wall time); and
// cpu_x_vs_<peer>, the same ratio in CPU time per frame, which other
// tenants of a shared machine disturb much less. ns/op counts our side
// only.
func versus(b *testing.B, peer string, want int, ours, theirs func(*testing.B) run) float64 {
	var o, p run
	var wall, cpu []float64
	for b.Loop() {
		var io, ip run
		runOurs := func() { io.add(b, "ours", want, ours(b)) }
		runPeer := func() {
			b.StopTimer()
			defer b.StartTimer()
			ip.add(b, peer, want, theirs(b))
		}
		runOurs()
		runPeer()
		runPeer()
		runOurs()
		o.add(b, "ours", 0, io)
		p.add(b, peer, 0, ip)
		// Both sides made the same number of frames: the time ratio is
		// the rate ratio.
		wall = append(wall, ip.wall.Seconds()/io.wall.Seconds())
		cpu = append(cpu, ip.cpu.Seconds()/io.cpu.Seconds())
	}
	b.ReportMetric(float64(o.frames)/o.wall.Seconds(), "frames/s")
	b.ReportMetric(float64(p.frames)/p.wall.Seconds(), peer+"_frames/s")
	b.ReportMetric(median(wall), "x_vs_"+peer)
	b.ReportMetric(median(cpu), "cpu_x_vs_"+peer)
	b.Logf("load average %s, CPU pressure %s", loadavg(), cpuPressure())
	return median(wall)
}

// add accumulates r into s after checking that it produced want frames
// (0: no check).
func (s *run) add(b *testing.B, who string, want int, r run) {
	if want > 0 && r.frames != want {
		b.Fatalf("%s produced %d frames, want %d", who, r.frames, want)
	}
	s.frames, s.wall, s.cpu = s.frames+r.frames, s.wall+r.wall, s.cpu+r.cpu
}

// fileDecode is the file-decode peer: it demuxes path with go-astiav and
// decodes it loops times in a row (seeking back to the start, timestamps
// shifted) with internal/av, converting every frame to BGR24 in one reused
// buffer. It measures from opening the file to the last frame.
func fileDecode(b *testing.B, path string, loops int) run {
	began, cpu0 := time.Now(), cpuTime(b)
	fc := astiav.AllocFormatContext()
	if fc == nil {
		b.Fatal("AllocFormatContext failed")
	}
	defer fc.Free()
	if err := fc.OpenInput(path, nil, nil); err != nil {
		b.Fatalf("opening %s: %v", path, err)
	}
	defer fc.CloseInput()
	if err := fc.FindStreamInfo(nil); err != nil {
		b.Fatal(err)
	}
	st := avin.VideoStream(fc)
	if st == nil {
		b.Fatalf("%s: no video stream", path)
	}
	cp := st.CodecParameters()
	dec, err := av.NewDecoder(av.CodecParams{Name: astiav.FindDecoder(cp.CodecID()).Name(), Width: cp.Width(), Height: cp.Height(),
		PixFmt: cp.PixelFormat().Name(), Extradata: cp.ExtraData()}, av.DecoderOptions{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer dec.Close()
	var conv av.Converter
	defer conv.Close()

	var buf []byte
	frames := 0
	toBGR := func(f *av.Frame) error {
		var err error
		if buf, _, _, _, err = conv.Convert(f, 0, 0, av.BGR24, buf); err != nil {
			return err
		}
		touched += int64(buf[len(buf)/2])
		frames++
		return nil
	}
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	// Loop k is shifted by k spans so timestamps keep increasing, as the
	// looped clip in the cache is.
	var firstDTS, lastDTS, step, span int64
	for loop := range loops {
		if loop > 0 {
			if err := fc.SeekFrame(st.Index(), 0, astiav.NewSeekFlags(astiav.SeekFlagBackward)); err != nil {
				b.Fatal(err)
			}
		}
		shift, i := int64(loop)*span, 0
		for {
			if err := fc.ReadFrame(pkt); err != nil {
				if errors.Is(err, astiav.ErrEof) {
					break
				}
				b.Fatal(err)
			}
			var err error
			if pkt.StreamIndex() == st.Index() {
				if loop == 0 {
					switch i {
					case 0:
						firstDTS = pkt.Dts()
					case 1:
						step = pkt.Dts() - firstDTS
					}
					lastDTS = pkt.Dts()
				}
				i++
				err = dec.Decode(pkt.Data(), pkt.Pts()+shift, pkt.Dts()+shift, pkt.Flags().Has(astiav.PacketFlagKey), toBGR)
			}
			pkt.Unref()
			if err != nil {
				b.Fatal(err)
			}
		}
		if loop == 0 {
			span = lastDTS - firstDTS + step
		}
	}
	if err := dec.Flush(toBGR); err != nil {
		b.Fatal(err)
	}
	return run{frames: frames, wall: time.Since(began), cpu: cpuTime(b) - cpu0}
}

// pyavPeer runs bench/pyav_reader.py.
type pyavPeer struct{ python, script string }

// pyav finds a Python 3 with PyAV, redis-py, protobuf and NumPy, or skips
// the peer naming what is missing.
func pyav(b *testing.B) pyavPeer {
	b.Helper()
	script, err := filepath.Abs("pyav_reader.py")
	if err != nil {
		b.Fatal(err)
	}
	// Debian's python3-av is installed for the system Python, which a
	// pyenv or venv python3 earlier in PATH would not see.
	candidates := []string{"/usr/bin/python3", "python3"}
	if py := os.Getenv("PYAV_PYTHON"); py != "" {
		candidates = []string{py}
	}
	var why []string
	for _, py := range candidates {
		out, err := exec.Command(py, script, "--check").CombinedOutput()
		if err == nil {
			b.Logf("PyAV peer: %s", strings.TrimSpace(string(out)))
			return pyavPeer{python: py, script: script}
		}
		why = append(why, fmt.Sprintf("%s: %v: %s", py, err, lastLine(out)))
	}
	b.Skipf("PyAV peer unavailable (apt-get install python3-av python3-redis python3-protobuf python3-numpy, or set PYAV_PYTHON): %s",
		strings.Join(why, "; "))
	return pyavPeer{}
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// read runs the reader over camera cam with PyAV thread_type threadType
// ("default" leaves PyAV's); it returns the frames decoded and the wall
// and CPU time the script measured itself (from the codec GET to the last
// image, so interpreter start-up and imports are not counted).
func (p pyavPeer) read(b *testing.B, addr, cam, desc, threadType string) run {
	var stderr bytes.Buffer
	cmd := exec.Command(p.python, p.script, "--addr", addr, "--camera", cam, "--descriptor", desc, "--thread-type", threadType)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("pyav_reader.py: %v\n%s", err, stderr.String())
	}
	var res struct {
		Frames     int     `json:"frames"`
		Seconds    float64 `json:"seconds"`
		CPUSeconds float64 `json:"cpu_seconds"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		b.Fatalf("pyav_reader.py output %q: %v", out, err)
	}
	return run{frames: res.Frames, wall: time.Duration(res.Seconds * float64(time.Second)),
		cpu: time.Duration(res.CPUSeconds * float64(time.Second))}
}

// descriptorFile writes the cache's protobuf schema (internal/pb) as a
// FileDescriptorSet for the Python reader, so it parses with the same
// schema and needs no protoc.
func descriptorFile(b *testing.B) string {
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{protodesc.ToFileDescriptorProto(pb.File_chrysalis_proto)}}
	raw, err := proto.Marshal(set)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "chrysalis.desc")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}
