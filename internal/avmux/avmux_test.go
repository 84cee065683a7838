package avmux_test

import (
	"testing"

	"github.com/asticode/go-astiav"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/avmux"
)

func TestPacketMS(t *testing.T) {
	if got := avmux.PacketMS(cache.Packet{ID: cache.ID{MS: 7}, Timestamp: 9}); got != 7 {
		t.Errorf("with an ID: %d, want 7", got)
	}
	if got := avmux.PacketMS(cache.Packet{Timestamp: 9}); got != 9 {
		t.Errorf("without an ID: %d, want 9", got)
	}
}

func TestClock(t *testing.T) {
	const tb90k = 1.0 / 90000
	// pkt is a packet at cache time ms with its own timestamps in 1/90000.
	pkt := func(ms, pts, dts int64) cache.Packet {
		return cache.Packet{Timestamp: ms, PTS: pts, DTS: dts, TimeBase: tb90k}
	}
	// bare is a packet without its own timestamps.
	bare := func(ms int64) cache.Packet {
		return cache.Packet{Timestamp: ms, PTS: astiav.NoPtsValue, DTS: astiav.NoPtsValue}
	}
	type want struct{ dts, pts, step int64 }
	for _, tc := range []struct {
		name string
		rate int64
		in   []cache.Packet
		want []want
	}{
		{
			name: "cache clock without own timestamps",
			rate: 1000,
			in:   []cache.Packet{bare(1000), bare(1041), bare(1079)},
			want: []want{{0, 0, 0}, {41, 41, 41}, {79, 79, 38}},
		},
		{
			name: "cache clock in 90 kHz ticks",
			rate: 90000,
			in:   []cache.Packet{bare(1000), bare(1040)},
			want: []want{{0, 0, 0}, {3600, 3600, 3600}},
		},
		{
			name: "own DTS steps replace arrival jitter",
			rate: 1000,
			in:   []cache.Packet{pkt(1000, 0, 0), pkt(1055, 3600, 3600), pkt(1070, 7200, 7200)},
			want: []want{{0, 0, 0}, {40, 40, 40}, {80, 80, 40}},
		},
		{
			name: "own DTS steps exact at 90 kHz",
			rate: 90000,
			in:   []cache.Packet{pkt(1000, 0, 0), pkt(1041, 3003, 3003)},
			want: []want{{0, 0, 0}, {3003, 3003, 3003}},
		},
		{
			name: "a jump beyond 500 ms follows the cache clock",
			rate: 1000,
			in:   []cache.Packet{pkt(1000, 0, 0), pkt(1040, 900000, 900000)},
			want: []want{{0, 0, 0}, {40, 40, 40}},
		},
		{
			name: "reorder delay is added to the presentation time",
			rate: 1000,
			in:   []cache.Packet{pkt(1000, 7200, 0), pkt(1040, 3600, 3600)},
			want: []want{{0, 80, 0}, {40, 40, 40}},
		},
		{
			name: "decode times always increase",
			rate: 1000,
			in:   []cache.Packet{bare(1000), bare(1000), bare(990)},
			want: []want{{0, 0, 0}, {1, 1, 1}, {2, 2, 1}},
		},
		{
			name: "another time base does not use the own step",
			rate: 1000,
			in:   []cache.Packet{pkt(1000, 0, 0), {Timestamp: 1055, PTS: 40, DTS: 40, TimeBase: 0.001}},
			want: []want{{0, 0, 0}, {55, 55, 55}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := avmux.Clock{Rate: tc.rate}
			for i, p := range tc.in {
				dts, pts := c.Next(p)
				if got := (want{dts, pts, c.Step()}); got != tc.want[i] {
					t.Errorf("packet %d: dts, pts, step %v, want %v", i, got, tc.want[i])
				}
			}
		})
	}
}

func TestCodecID(t *testing.T) {
	for _, tc := range []struct {
		name string
		want astiav.CodecID
	}{
		{"h264", astiav.CodecIDH264},
		{"AVC", astiav.CodecIDH264},
		{"hevc", astiav.CodecIDHevc},
		{"H265", astiav.CodecIDHevc},
	} {
		if got, err := avmux.CodecID(tc.name); err != nil || got != tc.want {
			t.Errorf("CodecID(%q) = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := avmux.CodecID("nope"); err == nil {
		t.Error("CodecID accepted an unknown codec")
	}
}
