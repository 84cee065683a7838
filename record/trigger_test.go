package record_test

import (
	"context"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/media"
	"github.com/chryscloud/chrysalis-go/record"
)

// A Trigger switches recording on at a trigger (from the keyframe at or
// before it minus the pre-roll), keeps it on while triggers come, and off
// Hold after the last one: the recording ends with the last packet at or
// before that time.
func TestTriggerHold(t *testing.T) {
	mc, cl := liveCam(t, "cam", 3*time.Second)
	dir := t.TempDir()
	const pre, hold = time.Second, 700 * time.Millisecond
	rec, err := record.New(cl, []string{"cam"}, record.Options{Dir: dir, PreRoll: pre})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := make(chan flow.Image)
	ran := make(chan error, 1)
	go func() { ran <- (&record.Trigger{Recorder: rec, Hold: hold}).Run(ctx, in) }()
	trigger := func() time.Time {
		now := time.Now().Truncate(time.Millisecond)
		in <- &media.ChImage{Camera: "cam", Time: now}
		return now
	}
	t1 := trigger()
	eventually(t, 15*time.Second, "recording", func() bool { return stats(t, rec, "cam").Packets > 0 })
	// Triggers every 300 ms, less than Hold apart: one recording.
	var last time.Time
	for range 4 {
		time.Sleep(300 * time.Millisecond) // the spacing of the triggers is the test's input
		last = trigger()
		if !stats(t, rec, "cam").Recording {
			t.Fatal("switched off while triggers came")
		}
	}
	d := eventually(t, 15*time.Second, "switched off", func() bool { return !stats(t, rec, "cam").Recording })
	if off := time.Since(last); off < hold || off > hold+time.Second {
		t.Errorf("switched off %v after the last trigger (waited %v); Hold is %v", off, d, hold)
	}
	close(in)
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := record.List(dir, "cam")
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments %+v, %v", segs, err)
	}
	kf, err := mc.KeyframeAtOrBefore(context.Background(), "cam", cache.IDAt(t1.Add(-pre)))
	if err != nil {
		t.Fatal(err)
	}
	if segs[0].First != kf.ID {
		t.Errorf("recording starts at %v, want the keyframe at or before the trigger - pre-roll, %v", segs[0].First, kf.ID)
	}
	end := last.Add(hold)
	if segs[0].End.After(end) || segs[0].End.Before(end.Add(-2*testclip.LiveStep)) {
		t.Errorf("recording ends at %v, want the last packet at or before the last trigger + Hold, %v", segs[0].End, end)
	}
	if err := (&record.Trigger{Recorder: rec, Camera: "nope"}).Run(ctx, sendOne(&media.ChImage{Time: time.Now()})); err == nil {
		t.Error("Trigger of an unknown camera: no error")
	}
}

func sendOne(img flow.Image) <-chan flow.Image {
	c := make(chan flow.Image, 1)
	c <- img
	close(c)
	return c
}
