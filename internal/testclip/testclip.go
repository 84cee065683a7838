// Package testclip loads a clip's encoded video packets through the ffprobe
// CLI (no FFmpeg library code) and writes them into a frame cache, so client
// tests read a cache filled by a writer that shares no code with the ingest.
// It also produces reference decodes with the ffmpeg CLI.
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
	"testing"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/pb"
)

// Path returns the absolute path of testdata/name.
func Path(name string) string {
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
