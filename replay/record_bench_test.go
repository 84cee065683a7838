package replay_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/replay"
	"github.com/chryscloud/chrysalis-go/sink"
)

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRecordPath is record-on-motion's recording half, the part issue
// 10 redesigned: triggers → replay.Window → sink.Clips, over the same
// cached windows, in the two modes side by side in each iteration:
// "decode" (the window decoded and converted to full-size BGR24, then the
// clip writer remuxes each image's packet after re-sorting them) and
// "packets" (the packets handed on without decoding, as demo and
// record-on-motion now run). It reports process CPU time per clip frame for
// each and their ratio (x_less_cpu = decode / packets).
func BenchmarkRecordPath(b *testing.B) {
	clip := testclip.Load(b, "clip1080.mp4")
	mc := cache.NewMemory(cache.Retention{})
	defer mc.Close()
	const loops = 5 // 20 s, 500 packets
	ctx := context.Background()
	if err := mc.SetCodec(ctx, "cam", clip.CacheCodec()); err != nil {
		b.Fatal(err)
	}
	n := 0
	for l := range loops {
		for _, p := range clip.Packets {
			span := int64(len(clip.Packets)) * int64(1/clip.TimeBase/25)
			var extra []byte
			if p.Key {
				extra = clip.Extradata
			}
			if _, err := mc.Append(ctx, "cam", &cache.Packet{Timestamp: testclip.MS(t0, n, step), Keyframe: p.Key, Data: p.Data,
				PTS: p.PTS + int64(l)*span, DTS: p.DTS + int64(l)*span, TimeBase: clip.TimeBase, CodecName: clip.Codec,
				Width: clip.Width, Height: clip.Height, Extradata: extra, Number: int64(n + 1)}); err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	cl := chrysalis.New(mc, chrysalis.Options{})
	// Three events, 2 s before and after each, as the demo records.
	trig := []time.Time{ms(75), ms(225), ms(400)}
	run := func(b *testing.B, packets bool) (time.Duration, int64) {
		w := &replay.Window{Client: cl, Camera: "cam", Pre: 2 * time.Second, Post: 2 * time.Second, FromKeyframe: true,
			Packets: packets, MaxWait: time.Millisecond}
		clips := sink.Clips(b.TempDir(), sink.ClipOptions{})
		g := flow.New(flow.Options{})
		src := g.Source("triggers", flow.SourceFunc(func(ctx context.Context, out chan<- flow.Image) error {
			for _, tt := range trig {
				if err := flow.Send(ctx, out, frames("trigger", 1, tt, 0)[0]); err != nil {
					return err
				}
			}
			return nil
		}))
		rep := g.Op("replay", w, src, flow.Edge{Buffer: 4, Policy: flow.Block})
		g.Sink("clips", clips, rep, flow.Edge{Buffer: 4, Policy: flow.Block})
		c0 := cpuTime(b)
		if err := g.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		var frames int64
		for _, c := range clips.Clips() {
			frames += c.Frames
		}
		if frames == 0 {
			b.Fatal("no clip frames")
		}
		return cpuTime(b) - c0, frames
	}
	var dec, pkt time.Duration
	var decFrames, pktFrames int64
	for b.Loop() {
		// ABBA: the machine's load drifts.
		for _, packets := range []bool{false, true, true, false} {
			cpu, f := run(b, packets)
			if packets {
				pkt, pktFrames = pkt+cpu, pktFrames+f
			} else {
				dec, decFrames = dec+cpu, decFrames+f
			}
		}
	}
	perDec := float64(dec.Microseconds()) / float64(decFrames)
	perPkt := float64(pkt.Microseconds()) / float64(pktFrames)
	b.ReportMetric(perDec, "decode_cpu_us/frame")
	b.ReportMetric(perPkt, "packets_cpu_us/frame")
	b.ReportMetric(perDec/perPkt, "x_less_cpu")
	b.ReportMetric(float64(pktFrames)/float64(decFrames), "frames_packets/decode")
}
