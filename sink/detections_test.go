package sink_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/flowtest"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/chryscloud/chrysalis-go/media"
	"github.com/chryscloud/chrysalis-go/sink"
)

// detected makes n frames of camera cam; frame i has a person at x = i and
// a face model that found nothing; frame 0 had no model run on it.
func detected(cam string, n int) []flow.Image {
	imgs := flowtest.Frames(cam, n, time.UnixMilli(1_750_000_000_000).UTC(), 40*time.Millisecond)
	for i, img := range imgs {
		img.ID = media.ID{MS: uint64(img.Time.UnixMilli()), Seq: uint64(i % 2)}
		if i == 0 {
			continue
		}
		imgs[i] = img.WithDetections(media.Detections{Model: "hog-people", Latency: time.Duration(i) * time.Millisecond,
			Width: 4, Height: 2, Objects: []media.Detection{{Box: image.Rect(i, 0, i+2, 2), Label: "person", Score: 1.5}}}).
			WithDetections(media.Detections{Model: "face", Width: 4, Height: 2, Objects: []media.Detection{}})
	}
	return imgs
}

// want is the record of detected's frame i.
func want(imgs []flow.Image, i int) sink.DetectionRecord { return sink.Record(imgs[i]) }

// feedSink feeds imgs to s and waits for it to end.
func feedSink(t *testing.T, s flow.Sink, imgs []flow.Image) error {
	t.Helper()
	in := make(chan flow.Image, len(imgs))
	for _, img := range imgs {
		img.Retain() // the test keeps them to compare
		in <- img
	}
	close(in)
	return s.Run(context.Background(), in)
}

func TestDetectionsJSONRoundTrip(t *testing.T) {
	imgs := detected("cam1", 5)
	var buf bytes.Buffer
	s := sink.DetectionsJSON(&buf, sink.DetectionsOptions{})
	if err := feedSink(t, s, imgs); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	var got []sink.DetectionRecord
	for sc.Scan() {
		var rec sink.DetectionRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, rec)
	}
	if len(got) != 4 || s.Written() != 4 {
		t.Fatalf("%d lines (Written %d), want 4: frame 0 had no model", len(got), s.Written())
	}
	for i, rec := range got {
		w := want(imgs, i+1)
		if !reflect.DeepEqual(rec, w) {
			t.Errorf("line %d:\n got %+v\nwant %+v", i, rec, w)
		}
	}
	if got[2].FrameID != imgs[3].ID.String() || got[2].Detections[0].Objects[0].Box != image.Rect(3, 0, 5, 2) {
		t.Errorf("line 2: frame %s box %v", got[2].FrameID, got[2].Detections[0].Objects[0].Box)
	}
}

func TestDetectionsJSONFormat(t *testing.T) {
	imgs := detected("cam1", 2)
	var buf bytes.Buffer
	if err := feedSink(t, sink.DetectionsJSON(&buf, sink.DetectionsOptions{}), imgs); err != nil {
		t.Fatal(err)
	}
	const line = `{"camera":"cam1","time":"2025-06-15T15:06:40.04Z","time_ms":1750000000040,"frame_id":"1750000000040-1",` +
		`"width":4,"height":2,"detections":[{"model":"hog-people","latency_ns":1000000,"width":4,"height":2,` +
		`"objects":[{"box":[1,0,3,2],"label":"person","score":1.5}]},` +
		`{"model":"face","latency_ns":0,"width":4,"height":2,"objects":[]}]}` + "\n"
	if buf.String() != line {
		t.Errorf("got  %s\nwant %s", buf.String(), line)
	}
	// SkipEmpty leaves out frames where no model found anything.
	buf.Reset()
	empty := flowtest.Frames("cam1", 1, time.Now(), 0)[0].WithDetections(media.Detections{Model: "face"})
	if err := feedSink(t, sink.DetectionsJSON(&buf, sink.DetectionsOptions{SkipEmpty: true}), []flow.Image{empty}); err != nil || buf.Len() != 0 {
		t.Errorf("SkipEmpty wrote %q (%v)", buf.String(), err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestDetectionsJSONWriteError(t *testing.T) {
	err := feedSink(t, sink.DetectionsJSON(failWriter{}, sink.DetectionsOptions{}), detected("cam1", 3))
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("disk full")) {
		t.Errorf("write error: %v", err)
	}
}

func TestDetectionsRedisRoundTrip(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	imgs := detected("door", 8)
	s := sink.DetectionsRedis(rdb, sink.RedisDetectionsOptions{MaxLen: 5})
	if err := feedSink(t, s, imgs); err != nil {
		t.Fatal(err)
	}
	if s.Added() != 7 || s.Failed() != 0 {
		t.Fatalf("added %d failed %d, want 7 and 0", s.Added(), s.Failed())
	}
	// A consumer reads the stream: bounded to the newest MaxLen entries.
	msgs, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{"detections_door", "0"}, Count: 100}).Result()
	if err != nil {
		t.Fatal(err)
	}
	entries := msgs[0].Messages
	if len(entries) != 5 {
		t.Fatalf("%d entries, want MAXLEN 5", len(entries))
	}
	for i, m := range entries {
		rec, err := sink.ParseDetections(m)
		if err != nil {
			t.Fatal(err)
		}
		w := want(imgs, i+3)
		if !reflect.DeepEqual(rec, w) {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, rec, w)
		}
		if m.Values["camera"] != "door" || m.Values["frame_id"] != w.FrameID || m.Values["objects"] != "1" {
			t.Errorf("entry %d fields %v", i, m.Values)
		}
	}
	// A bad entry is an error, not a zero record.
	if _, err := sink.ParseDetections(redis.XMessage{ID: "1-0", Values: map[string]any{"data": "{"}}); err == nil {
		t.Error("a bad entry parsed")
	}

	// Redis gone: the sink counts and goes on (no graph stop, no hang).
	srv.Kill()
	down := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	defer down.Close()
	s2 := sink.DetectionsRedis(down, sink.RedisDetectionsOptions{})
	if err := feedSink(t, s2, detected("door", 3)); err != nil {
		t.Fatal(err)
	}
	if s2.Failed() != 2 || s2.Err() == nil {
		t.Errorf("with Redis down: failed %d, err %v; want 2 and an error", s2.Failed(), s2.Err())
	}
}
