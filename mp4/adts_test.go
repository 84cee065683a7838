package mp4_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/chryscloud/chrysalis-go/mp4"
)

// adts builds one ADTS frame: a header of the given fields (obj is the
// MPEG-4 object type, fi the sampling frequency index, ch the channel
// configuration, blocks the raw data blocks), with a 2-byte CRC when crc,
// and payload; length overrides the header's frame length when > 0.
func adts(obj, fi, ch, blocks int, crc bool, payload []byte, length int) []byte {
	hdr := 7
	if crc {
		hdr = 9
	}
	n := hdr + len(payload)
	if length > 0 {
		n = length
	}
	pa := byte(1)
	if crc {
		pa = 0
	}
	b := []byte{0xff, 0xf0 | pa, byte(obj-1)<<6 | byte(fi)<<2 | byte(ch>>2), byte(ch&3)<<6 | byte(n>>11), byte(n >> 3), byte(n&7)<<5 | 0x1f, 0xfc | byte(blocks-1)}
	if crc {
		b = append(b, 0xab, 0xcd)
	}
	return append(b, payload...)
}

func TestParseADTS(t *testing.T) {
	au := []byte{1, 2, 3, 4, 5}
	lc48 := mp4.AudioConfig{ObjectType: 2, SampleRate: 48000, Channels: 2}
	good := adts(2, 3, 2, 1, false, au, 0)
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for _, tc := range []struct {
		name string
		in   []byte
		cfg  mp4.AudioConfig
		aus  int // access units; 0: an error wrapping ErrBadADTS
	}{
		{"LC 48 kHz stereo", good, lc48, 1},
		{"with CRC", adts(2, 3, 2, 1, true, au, 0), lc48, 1},
		{"two frames", cat(good, adts(2, 3, 2, 1, true, au, 0)), lc48, 2},
		{"Main 44.1 kHz mono", adts(1, 4, 1, 1, false, au, 0), mp4.AudioConfig{ObjectType: 1, SampleRate: 44100, Channels: 1}, 1},
		{"LTP 7350 Hz 7.1", adts(4, 12, 7, 1, false, au, 0), mp4.AudioConfig{ObjectType: 4, SampleRate: 7350, Channels: 7}, 1},
		{"empty", nil, mp4.AudioConfig{}, 0},
		{"one byte", []byte{0xff}, mp4.AudioConfig{}, 0},
		{"six bytes", good[:6], mp4.AudioConfig{}, 0},
		{"no sync word", cat([]byte{0xfe}, good[1:]), mp4.AudioConfig{}, 0},
		{"half a sync word", cat([]byte{0xff, 0xe1}, good[2:]), mp4.AudioConfig{}, 0},
		{"layer 1", cat([]byte{0xff, 0xf3}, good[2:]), mp4.AudioConfig{}, 0},
		{"frequency index 13", adts(2, 13, 2, 1, false, au, 0), mp4.AudioConfig{}, 0},
		{"frequency index 15", adts(2, 15, 2, 1, false, au, 0), mp4.AudioConfig{}, 0},
		{"channel configuration 0", adts(2, 3, 0, 1, false, au, 0), mp4.AudioConfig{}, 0},
		{"length of the header only", adts(2, 3, 2, 1, false, nil, 0), mp4.AudioConfig{}, 0},
		{"CRC header, length 9", adts(2, 3, 2, 1, true, nil, 0), mp4.AudioConfig{}, 0},
		{"length below the header", adts(2, 3, 2, 1, false, au, 3), mp4.AudioConfig{}, 0},
		{"header without its payload", good[:7], mp4.AudioConfig{}, 0},
		{"truncated", good[:len(good)-1], mp4.AudioConfig{}, 0},
		{"length beyond the buffer", adts(2, 3, 2, 1, false, au, 8191), mp4.AudioConfig{}, 0},
		{"two raw data blocks", adts(2, 3, 2, 2, false, au, 0), mp4.AudioConfig{}, 0},
		{"four raw data blocks with CRC", adts(2, 3, 2, 4, true, au, 0), mp4.AudioConfig{}, 0},
		{"trailing bytes", cat(good, []byte{0xff, 0xf1, 0}), mp4.AudioConfig{}, 0},
		{"second frame garbage", cat(good, bytes.Repeat([]byte{0x55}, 12)), mp4.AudioConfig{}, 0},
		{"configuration changes", cat(good, adts(2, 4, 2, 1, false, au, 0)), mp4.AudioConfig{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, aus, err := mp4.ParseADTS(tc.in)
			if tc.aus == 0 {
				if !errors.Is(err, mp4.ErrBadADTS) || aus != nil {
					t.Fatalf("ParseADTS(% x) = %+v, %d units, %v; want ErrBadADTS", tc.in, cfg, len(aus), err)
				}
				t.Log(err)
				return
			}
			if err != nil || cfg != tc.cfg || len(aus) != tc.aus {
				t.Fatalf("ParseADTS = %+v, %d units, %v; want %+v, %d units", cfg, len(aus), err, tc.cfg, tc.aus)
			}
			for i, u := range aus {
				if !bytes.Equal(u, au) {
					t.Fatalf("unit %d = % x, want % x (header and CRC removed)", i, u, au)
				}
			}
		})
	}
	if got := lc48.AudioSpecificConfig(); !bytes.Equal(got, []byte{0x11, 0x90}) {
		t.Errorf("AudioSpecificConfig(LC 48 kHz stereo) = % x, want 11 90", got)
	}
}

// TestParseADTSMutations: random corruptions of valid frames (bit flips,
// cuts, splices) return units inside the input or ErrBadADTS, never a
// panic.
func TestParseADTSMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := bytes.Join([][]byte{adts(2, 3, 2, 1, false, bytes.Repeat([]byte{7}, 20), 0),
		adts(2, 3, 2, 1, true, bytes.Repeat([]byte{9}, 30), 0)}, nil)
	var ok, bad int
	for range 20000 {
		b := bytes.Clone(base)
		switch rng.IntN(3) {
		case 0:
			for range 1 + rng.IntN(3) {
				b[rng.IntN(len(b))] ^= 1 << rng.IntN(8)
			}
		case 1:
			b = b[:rng.IntN(len(b))]
		case 2:
			i := rng.IntN(len(b))
			b = append(b[:i:i], base[rng.IntN(len(base)):]...)
		}
		checkParse(t, b)
		if _, _, err := mp4.ParseADTS(b); err == nil {
			ok++
		} else {
			bad++
		}
	}
	t.Logf("%d mutations parsed, %d refused", ok, bad)
	if ok == 0 || bad == 0 {
		t.Fatalf("%d parsed, %d refused: the mutations do not exercise both outcomes", ok, bad)
	}
}

// checkParse checks ParseADTS's contract on b.
func checkParse(t *testing.T, b []byte) {
	t.Helper()
	cfg, aus, err := mp4.ParseADTS(b)
	if err != nil {
		if !errors.Is(err, mp4.ErrBadADTS) {
			t.Fatalf("ParseADTS(% x): %v, not ErrBadADTS", b, err)
		}
		return
	}
	n := 0
	for _, u := range aus {
		n += len(u) + 7
		if len(u) == 0 {
			t.Fatalf("ParseADTS(% x): an empty unit", b)
		}
	}
	if n > len(b) || cfg.SampleRate == 0 || cfg.Channels < 1 || cfg.Channels > 7 {
		t.Fatalf("ParseADTS(% x) = %+v, %d units of %d bytes", b, cfg, len(aus), n)
	}
}

func FuzzParseADTS(f *testing.F) {
	f.Add(adts(2, 3, 2, 1, false, []byte{1, 2, 3}, 0))
	f.Add(adts(2, 3, 2, 1, true, []byte{1, 2, 3}, 0))
	f.Add(adts(2, 3, 2, 2, false, []byte{1, 2, 3}, 0))
	f.Add([]byte{0xff, 0xf1})
	f.Fuzz(checkParse)
}
