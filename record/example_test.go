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
	"github.com/chryscloud/chrysalis-go/ingest"
	"github.com/chryscloud/chrysalis-go/record"
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
