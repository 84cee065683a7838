// Package testclip loads a clip's encoded video packets through the ffprobe
// CLI (no FFmpeg library code) and writes them into a frame cache, all at
// once (Append, WriteRedis) or as a live camera (Live), so client tests read
// a cache filled by a writer that shares no code with the ingest. It also
// produces reference decodes with the ffmpeg CLI.
package testclip

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/pb"
)

// Path returns the absolute path of testdata/name; an absolute name is
// returned as it is.
func Path(name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", name)
}

// RequireFFmpeg skips (or fails under CI=true) when ffmpeg/ffprobe are
// missing.
func RequireFFmpeg(t testing.TB) {
	t.Helper()
	for _, b := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(b); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found and CI=true", b)
			}
			t.Skipf("%s not installed; run `make deps`", b)
		}
	}
}

// Packet is one encoded packet as ffprobe reported it.
type Packet struct {
	Data     []byte
	PTS, DTS int64
	Key      bool
}

// Clip is a clip's first video stream.
type Clip struct {
	Codec         string
	Width, Height int
	PixFmt        string
	Extradata     []byte
	TimeBase      float64
	Packets       []Packet
}

type probeOut struct {
	Streams []struct {
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
		PixFmt    string `json:"pix_fmt"`
		TimeBase  string `json:"time_base"`
		Extradata string `json:"extradata"`
	} `json:"streams"`
	Packets []struct {
		PTS   *int64 `json:"pts"`
		DTS   *int64 `json:"dts"`
		Flags string `json:"flags"`
		Data  string `json:"data"`
	} `json:"packets"`
}

// hexdump decodes ffprobe's -show_data dump ("00000000: 0000 027d ...  ascii").
func hexdump(s string) ([]byte, error) {
	var out []byte
	for _, line := range strings.Split(s, "\n") {
		if len(line) < 10 {
			continue
		}
		h := line[10:min(len(line), 50)]
		b, err := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
		if err != nil {
			return nil, fmt.Errorf("hexdump line %q: %w", line, err)
		}
		out = append(out, b...)
	}
	return out, nil
}

// Load runs ffprobe on testdata/name.
func Load(t testing.TB, name string) *Clip {
	t.Helper()
	RequireFFmpeg(t)
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-show_packets",
		"-show_data", "-of", "json", Path(name)).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", name, err)
	}
	var po probeOut
	if err := json.Unmarshal(out, &po); err != nil {
		t.Fatal(err)
	}
	if len(po.Streams) != 1 {
		t.Fatalf("ffprobe %s: %d video streams", name, len(po.Streams))
	}
	s := po.Streams[0]
	c := &Clip{Codec: s.CodecName, Width: s.Width, Height: s.Height, PixFmt: s.PixFmt}
	if num, den, ok := strings.Cut(s.TimeBase, "/"); ok {
		n, _ := strconv.ParseFloat(num, 64)
		d, _ := strconv.ParseFloat(den, 64)
		c.TimeBase = n / d
	}
	if c.Extradata, err = hexdump(s.Extradata); err != nil {
		t.Fatal(err)
	}
	for _, p := range po.Packets {
		d, err := hexdump(p.Data)
		if err != nil {
			t.Fatal(err)
		}
		q := Packet{Data: d, Key: strings.Contains(p.Flags, "K")}
		if p.PTS != nil {
			q.PTS = *p.PTS
		}
		if p.DTS != nil {
			q.DTS = *p.DTS
		}
		c.Packets = append(c.Packets, q)
	}
	return c
}

// MS is packet i's cache timestamp when written at t0 with step ms apart.
func MS(t0 int64, i int, step int64) int64 { return t0 + int64(i)*step }

// Codec is the clip's codec info.
func (c *Clip) CacheCodec() cache.Codec {
	return cache.Codec{Name: c.Codec, Width: c.Width, Height: c.Height, PixFmt: c.PixFmt, Extradata: c.Extradata}
}

// Append writes the clip into any cache through its Append method, packet i
// stamped t0 + i*step ms.
func (c *Clip) Append(t testing.TB, cc cache.Cache, cam string, t0, step int64) []cache.ID {
	t.Helper()
	ctx := context.Background()
	if err := cc.SetCodec(ctx, cam, c.CacheCodec()); err != nil {
		t.Fatal(err)
	}
	ids := make([]cache.ID, len(c.Packets))
	for i, p := range c.Packets {
		var extra []byte
		if p.Key {
			extra = c.Extradata // as our ingest does: keyframes carry the parameters
		}
		id, err := cc.Append(ctx, cam, &cache.Packet{Timestamp: MS(t0, i, step), Keyframe: p.Key, Data: p.Data,
			PTS: p.PTS, DTS: p.DTS, TimeBase: c.TimeBase, Width: c.Width, Height: c.Height, CodecName: c.Codec, PixFmt: c.PixFmt,
			Extradata: extra})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

// LiveStep is the packet interval of a Live camera: 25 fps.
const LiveStep = 40 * time.Millisecond

// Live is a simulated live camera: it appends a clip's packets to a cache
// every LiveStep, looping, stamped with the wall clock, as the ingest would
// (keyframes carry the codec parameters, packets are numbered from 1).
type Live struct {
	cc  cache.Cache
	cam string

	mu      sync.Mutex
	clip    *Clip
	i       int   // the next packet of clip
	newClip bool  // clip changed: set the codec before its first packet
	keys    int64 // keyframes appended, for KeyframeNumber

	cancel context.CancelFunc
	done   chan struct{}
	stop   sync.Once
}

// Live starts feeding the clip into cc as camera cam and returns once the
// camera is in the cache. It sets the camera's codec, then appends packet
// n stamped start + n*LiveStep, where start is history ago (truncated to
// LiveStep): the packets already due are appended at once, as if the
// camera had been running for history (0: it starts now), and the rest as
// their time comes. The feed stops at Stop or test cleanup, and on the
// first failed append (a closed cache).
func (c *Clip) Live(t testing.TB, cc cache.Cache, cam string, history time.Duration) *Live {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &Live{cc: cc, cam: cam, clip: c, cancel: cancel, done: make(chan struct{})}
	if err := cc.SetCodec(ctx, cam, c.CacheCodec()); err != nil {
		cancel()
		t.Fatal(err)
	}
	start := time.Now().Add(-history).Truncate(LiveStep)
	due := func(n int) time.Time { return start.Add(time.Duration(n) * LiveStep) }
	n := 0
	for ; !due(n).After(time.Now()); n++ {
		if err := l.append(ctx, n, due(n)); err != nil {
			cancel()
			t.Fatal(err)
		}
	}
	go func() {
		defer close(l.done)
		for ; ; n++ {
			tm := time.NewTimer(time.Until(due(n)))
			select {
			case <-ctx.Done():
				tm.Stop()
				return
			case <-tm.C:
			}
			if l.append(ctx, n, due(n)) != nil {
				return
			}
		}
	}()
	t.Cleanup(l.Stop)
	return l
}

// append appends the camera's packet number n (from 0), stamped at.
func (l *Live) append(ctx context.Context, n int, at time.Time) error {
	l.mu.Lock()
	if l.newClip {
		l.newClip, l.i = false, 0
		if err := l.cc.SetCodec(ctx, l.cam, l.clip.CacheCodec()); err != nil {
			l.mu.Unlock()
			return err
		}
	}
	c, i := l.clip, l.i
	l.i++
	p := c.Packets[i%len(c.Packets)]
	if p.Key {
		l.keys++
	}
	keys := l.keys
	l.mu.Unlock()
	var extra []byte
	if p.Key {
		extra = c.Extradata
	}
	_, err := l.cc.Append(ctx, l.cam, &cache.Packet{Timestamp: at.UnixMilli(), Keyframe: p.Key, Data: p.Data,
		PTS: p.PTS, DTS: p.DTS, TimeBase: c.TimeBase, CodecName: c.Codec, Width: c.Width, Height: c.Height,
		PixFmt: c.PixFmt, Extradata: extra, Number: int64(n + 1), KeyframeNumber: keys})
	return err
}

// Switch makes the camera continue with clip c from its first packet, as a
// camera reconnecting with other settings would; the camera's codec is set
// to c's before that packet.
func (l *Live) Switch(c *Clip) {
	l.mu.Lock()
	l.clip, l.newClip = c, true
	l.mu.Unlock()
}

// Stop stops the feed and waits for it to end. It is idempotent.
func (l *Live) Stop() {
	l.stop.Do(func() {
		l.cancel()
		<-l.done
	})
}

// WriteRedis writes the clip in the edge proxy's Redis layout with raw
// commands (XADD, SET), the way an independent writer would: for each
// keyframe an index entry, then the packet, both at "<ms>-*".
func (c *Clip) WriteRedis(t testing.TB, rdb *redis.Client, cam string, t0, step int64) {
	t.Helper()
	ctx := context.Background()
	cd, _ := proto.Marshal(&pb.VideoCodec{Name: c.Codec, Width: int32(c.Width), Height: int32(c.Height), PixFmt: c.PixFmt,
		Extradata: c.Extradata, ExtradataSize: int32(len(c.Extradata)), LongName: c.Codec})
	if err := rdb.Do(ctx, "SET", "codec_video_info"+cam, cd).Err(); err != nil {
		t.Fatal(err)
	}
	for i, p := range c.Packets {
		ms := MS(t0, i, step)
		vf, _ := proto.Marshal(&pb.VideoFrame{Width: int64(c.Width), Height: int64(c.Height), Data: p.Data, Timestamp: ms,
			IsKeyframe: p.Key, Pts: p.PTS, Dts: p.DTS, FrameType: map[bool]string{true: "I", false: "P"}[p.Key],
			TimeBase: c.TimeBase, DeviceId: cam, Packet: int64(i), CodecName: c.Codec, PixFmt: c.PixFmt})
		id := strconv.FormatInt(ms, 10) + "-*"
		key := "0"
		if p.Key {
			key = "1"
			if err := rdb.Do(ctx, "XADD", "memory_iframe_list_"+cam, id, "keyframe", 1).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := rdb.Do(ctx, "XADD", "in_memory_queue_"+cam, id, "data", vf, "is_keyframe", key).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// Info is what ffprobe -count_frames reports of a video file: its first
// video stream's codec, size and decoded frame count, and the file's
// duration in seconds.
type Info struct {
	Codec         string
	Width, Height int
	Frames        int
	Duration      float64
}

// Probe runs ffprobe -count_frames on the video file at path (any path,
// not only testdata's).
func Probe(t testing.TB, path string) Info {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames:format=duration", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var po struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
			Frames    string `json:"nb_read_frames"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &po); err != nil || len(po.Streams) != 1 {
		t.Fatalf("ffprobe %s: %v: %s", path, err, out)
	}
	s := po.Streams[0]
	n, _ := strconv.Atoi(s.Frames)
	d, _ := strconv.ParseFloat(po.Format.Duration, 64)
	return Info{Codec: s.CodecName, Width: s.Width, Height: s.Height, Frames: n, Duration: d}
}

// Reference decodes testdata/name with the ffmpeg CLI into raw frames of
// pixfmt (bgr24, rgb24, gray), scaled to w x h when both are > 0.
func Reference(t testing.TB, name, pixfmt string, w, h int) [][]byte {
	t.Helper()
	RequireFFmpeg(t)
	args := []string{"-v", "error", "-i", Path(name)}
	if w > 0 && h > 0 {
		args = append(args, "-vf", fmt.Sprintf("scale=%d:%d:flags=bilinear", w, h))
	}
	raw := filepath.Join(t.TempDir(), "ref.raw")
	args = append(args, "-f", "rawvideo", "-pix_fmt", pixfmt, "-y", raw)
	if msg, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg reference decode: %v: %s", err, msg)
	}
	out, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	bpp := 3
	if pixfmt == "gray" {
		bpp = 1
	}
	if w == 0 || h == 0 {
		c := Load(t, name)
		w, h = c.Width, c.Height
	}
	n := w * h * bpp
	var frames [][]byte
	for len(out) >= n {
		frames = append(frames, out[:n])
		out = out[n:]
	}
	return frames
}

// PSNR is the peak signal-to-noise ratio of a against b in dB (+Inf when
// equal). Not race-instrumented: it is pure arithmetic over private slices
// and would otherwise dominate -race test time.
//
//go:norace
func PSNR(a, b []byte) float64 {
	if len(a) != len(b) || len(a) == 0 {
		return 0
	}
	var sse float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		sse += d * d
	}
	if sse == 0 {
		return math.Inf(1)
	}
	mse := sse / float64(len(a))
	return 10 * math.Log10(255*255/mse)
}
