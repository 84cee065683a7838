package testclip

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"testing"
)

// AVCC reports the NAL length size of an H.264 clip whose packets are
// length-prefixed (an avcC extradata record, as MP4 and FLV carry), and
// false when the extradata is not an avcC record (Annex B packets).
func (c *Clip) AVCC() (lengthSize int, ok bool) {
	if c.Codec != "h264" || len(c.Extradata) < 7 || c.Extradata[0] != 1 {
		return 0, false
	}
	return int(c.Extradata[4]&3) + 1, true
}

// ParamSets returns the SPS and PPS of an H.264 clip's avcC extradata (the
// first of each).
func (c *Clip) ParamSets(t testing.TB) (sps, pps []byte) {
	t.Helper()
	e := c.Extradata
	if _, ok := c.AVCC(); !ok {
		t.Fatalf("%s extradata is not an avcC record", c.Codec)
	}
	next := func(i int) ([]byte, int) {
		if i+2 > len(e) {
			t.Fatalf("avcC record truncated at %d", i)
		}
		n := int(binary.BigEndian.Uint16(e[i:]))
		if i+2+n > len(e) {
			t.Fatalf("avcC record truncated at %d (+%d)", i, n)
		}
		return e[i+2 : i+2+n], i + 2 + n
	}
	i := 5
	if e[i]&0x1f == 0 {
		t.Fatal("avcC record without an SPS")
	}
	sps, i = next(i + 1)
	for k := 1; k < int(e[5]&0x1f); k++ {
		_, i = next(i)
	}
	if i >= len(e) || e[i] == 0 {
		t.Fatal("avcC record without a PPS")
	}
	pps, _ = next(i + 1)
	return sps, pps
}

// NALUs splits a length-prefixed (AVCC) packet into its NAL units.
func NALUs(t testing.TB, pkt []byte, lengthSize int) [][]byte {
	t.Helper()
	var out [][]byte
	for len(pkt) > 0 {
		if len(pkt) < lengthSize {
			t.Fatalf("AVCC packet: %d bytes left, shorter than a length", len(pkt))
		}
		n := 0
		for _, b := range pkt[:lengthSize] {
			n = n<<8 | int(b)
		}
		pkt = pkt[lengthSize:]
		if n > len(pkt) {
			t.Fatalf("AVCC packet: NAL of %d bytes, %d left", n, len(pkt))
		}
		out = append(out, pkt[:n])
		pkt = pkt[n:]
	}
	return out
}

// ToAnnexB is a length-prefixed packet rewritten with a 4-byte start code
// before each NAL unit, as FFmpeg's RTP depacketizer emits it.
func ToAnnexB(t testing.TB, pkt []byte, lengthSize int) []byte {
	t.Helper()
	var out []byte
	for _, n := range NALUs(t, pkt, lengthSize) {
		out = append(append(out, 0, 0, 0, 1), n...)
	}
	return out
}

// Data returns the clip's packet payloads, in decode order.
func (c *Clip) Data() [][]byte {
	out := make([][]byte, len(c.Packets))
	for i, p := range c.Packets {
		out[i] = p.Data
	}
	return out
}

// SamePackets fails t unless got holds exactly the payloads of want, in
// order: same count, and packet i byte for byte equal to want[i]. The
// message names the first difference by index, size and MD5.
func SamePackets(t testing.TB, what string, got, want [][]byte) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if string(got[i]) != string(want[i]) {
			t.Fatalf("%s: packet %d of %d differs: %d bytes md5 %x, want %d bytes md5 %x (first difference at byte %d)",
				what, i, len(want), len(got[i]), md5.Sum(got[i]), len(want[i]), md5.Sum(want[i]), firstDiff(got[i], want[i]))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d packets, want %d (the first %d are equal)", what, len(got), len(want), min(len(got), len(want)))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// Describe names a packet list's size, for logs.
func Describe(pkts [][]byte) string {
	n := 0
	for _, p := range pkts {
		n += len(p)
	}
	return fmt.Sprintf("%d packets, %d bytes", len(pkts), n)
}
