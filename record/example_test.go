package record_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/ingest"
	"github.com/chryscloud/chrysalis-go/operator"
	"github.com/chryscloud/chrysalis-go/record"
	"github.com/chryscloud/chrysalis-go/source"
)

// Recording a live camera: switched on now, the first segment starts at
// the keyframe at or before now - 5 s, from the cache; Close finalises the
// open segment.
func Example() {
	ctx := context.Background()
	mc := cache.NewMemory(cache.Retention{MaxAge: time.Minute})
	defer mc.Close()
	run, err := ingest.Start(ctx, mc, ingest.Config{Camera: "cam1", Input: ingest.DemoInput,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer run.Stop()
	cl := chrysalis.New(mc, chrysalis.Options{})
	defer cl.Close()
	dir, err := os.MkdirTemp("", "record-example-*")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	rec, err := record.New(cl, []string{"cam1"}, record.Options{Dir: dir, Segment: time.Second,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	if err := rec.Start(ctx, time.Now()); err != nil {
		log.Fatal(err)
	}
	for s, _ := rec.Stats("cam1"); s.Packets < 50; s, _ = rec.Stats("cam1") {
		time.Sleep(50 * time.Millisecond)
	}
	if err := rec.Close(); err != nil {
		log.Fatal(err)
	}
	segs, err := record.Segments(filepath.Join(dir, "cam1"), "cam1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(segs) > 0, strings.HasPrefix(filepath.Base(segs[0].Path), "cam1_20"))
	// Output: true true
}

// Motion switches recording on, from 5 s before it (the pre-roll, from the
// cache), until 10 s after the last motion: the Trigger is the graph's sink.
func ExampleTrigger() {
	var (
		cl  *chrysalis.Client // a client of the cache
		rec *record.Recorder  // record.New(cl, []string{"cam1"}, record.Options{Dir: "archive"})
		ctx context.Context
	)
	if cl == nil {
		return // a sketch: see Example for a recorder that runs
	}
	g := flow.New(flow.Options{})
	cam := g.Source("camera", source.Live(cl, "cam1", chrysalis.CameraOptions{Format: chrysalis.GRAY8, Width: 320}))
	motion := g.Op("motion", &operator.Motion{Threshold: 2, MinInterval: time.Second}, g.Op("throttle", operator.Throttle(10), cam))
	g.Sink("record", &record.Trigger{Recorder: rec, Hold: 10 * time.Second}, motion)
	g.Run(ctx)
}
