package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/ingest"
)

// TestFileCaptureTime: a file read as fast as possible is stamped from its
// own clock, anchored at the wall-clock time of its first packet: 100
// frames at 25 fps get 100 distinct milliseconds, 40 ms apart (B-frames
// included: the stamps follow DTS), although they are read within a few
// milliseconds of each other.
func TestFileCaptureTime(t *testing.T) {
	requireFFmpeg(t)
	for _, name := range []string{"clip720.mp4", "bframes720.mp4"} {
		t.Run(name, func(t *testing.T) {
			m := cache.NewMemory(cache.Retention{})
			defer m.Close()
			t0 := time.Now()
			in, err := ingest.New(m, ingest.Config{Camera: "f", Input: clip(name), Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			r := start(t, in)
			if err := r.wait(t, 20*time.Second); err != nil {
				t.Fatalf("Run: %v", err)
			}
			took := time.Since(t0)
			pkts, err := m.Range(context.Background(), "f", cache.MinID, cache.MaxID, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(pkts) != 100 {
				t.Fatalf("%d packets, want 100", len(pkts))
			}
			first := pkts[0].ID.MS
			for i, p := range pkts {
				if want := first + uint64(i)*40; p.ID.MS != want || p.Timestamp != int64(want) {
					t.Fatalf("packet %d: id %v, timestamp %d; want ms %d (40 ms apart)", i, p.ID, p.Timestamp, want)
				}
			}
			if d := time.UnixMilli(int64(first)).Sub(t0); d < 0 || d > took {
				t.Errorf("first stamp %v after Run started, want within the %v Run took", d, took)
			}
			t.Logf("read in %v; stamps span %v from %v after start", took.Round(time.Millisecond),
				time.Duration(pkts[99].ID.MS-first)*time.Millisecond, time.UnixMilli(int64(first)).Sub(t0).Round(time.Millisecond))
		})
	}
}
