package testclip

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
)

// AnnexB is a clip's video as the ffmpeg CLI writes it for an Annex B
// reader: `ffmpeg -i <clip> -c copy -bsf:v <codec>_mp4toannexb -f <codec> -`,
// split into access units here (by the NAL unit headers, on its own: it
// shares no code with the package under test). Units are in decode order;
// the H.264 mp4toannexb filter puts SPS/PPS in-band before every IDR.
type AnnexB struct {
	Codec string // "h264" or "hevc"
	Units [][]byte
}

// LoadAnnexB runs ffmpeg on testdata/name (H.264 or HEVC in MP4).
func LoadAnnexB(t testing.TB, name string) *AnnexB {
	t.Helper()
	c := Load(t, name)
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", Path(name), "-map", "0:v:0", "-c", "copy",
		"-bsf:v", c.Codec+"_mp4toannexb", "-f", c.Codec, "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg annexb %s: %v", name, err)
	}
	a := &AnnexB{Codec: c.Codec, Units: splitAU(c.Codec, out)}
	if len(a.Units) != len(c.Packets) {
		t.Fatalf("%s: split %d access units, ffprobe counts %d packets", name, len(a.Units), len(c.Packets))
	}
	return a
}

// splitAU cuts an Annex B elementary stream before each NAL unit that
// opens an access unit: an AUD, a parameter set or SEI after a picture, or
// the first slice of a picture after a picture.
func splitAU(codec string, b []byte) [][]byte {
	var starts []int // offsets of start codes (3-byte; a 4-byte one begins a byte earlier)
	for i := 0; i+3 <= len(b); {
		j := bytes.Index(b[i:], []byte{0, 0, 1})
		if j < 0 {
			break
		}
		s := i + j
		if s > 0 && b[s-1] == 0 {
			s--
		}
		starts = append(starts, s)
		i = i + j + 3
	}
	var aus [][]byte
	cur, vcl := 0, false
	for k, s := range starts {
		h := s + 3
		if b[s+2] == 0 {
			h++
		}
		end := len(b)
		if k+1 < len(starts) {
			end = starts[k+1]
		}
		nal := b[h:end]
		if len(nal) < 3 {
			continue
		}
		open, slice := false, false
		if codec == "hevc" {
			t := nal[0] >> 1 & 0x3f
			slice = t < 32
			open = (slice && nal[2]&0x80 != 0) || (t >= 32 && t <= 35) || t == 39
		} else {
			t := nal[0] & 0x1f
			slice = t == 1 || t == 5
			open = (slice && nal[1]&0x80 != 0) || t == 9 || t == 7 || t == 8 || t == 6
		}
		if open && vcl {
			aus = append(aus, b[cur:s])
			cur, vcl = s, false
		}
		vcl = vcl || slice
	}
	if cur < len(b) {
		aus = append(aus, b[cur:])
	}
	return aus
}

// WriteCloud writes the units into stream key the way the Chrysalis Cloud
// streaming node did, with raw XADDs (field "frame"): paced, unit i at id
// "<t0 + i*step>-*"; or, with step < 0, unpaced, all in one pipeline with
// server-assigned "*" ids (many then share a millisecond). It returns the
// ids in order.
func (a *AnnexB) WriteCloud(t testing.TB, rdb *redis.Client, key string, t0, step int64) []string {
	t.Helper()
	ctx := context.Background()
	pipe := rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(a.Units))
	for i, u := range a.Units {
		id := "*"
		if step >= 0 {
			id = strconv.FormatInt(MS(t0, i, step), 10) + "-*"
		}
		cmds[i] = pipe.Do(ctx, "XADD", key, id, "frame", u)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(cmds))
	for i, c := range cmds {
		ids[i] = c.Val().(string)
	}
	return ids
}
