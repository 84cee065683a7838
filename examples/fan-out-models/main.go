// Fan-out-models feeds one camera to two real models that run at their own
// rates, the way a deployment runs several detectors on one camera:
//
//	camera ─┬─ throttle 2 fps ── HOG people ──────────────┬─ annotate ── JPEGs  out/people/
//	        │                                             └─ detections.jsonl
//	        └─ throttle 5 fps ── gray 384 px ── Haar faces ┬─ annotate ── JPEGs  out/faces/
//	                                                      └─ detections.jsonl
//
// The camera is decoded once; both branches share each frame read-only
// (the face branch's resize-and-gray, one swscale pass, makes a new
// image: a quarter of the pixels makes the cascade four times faster;
// Detect attaches its results
// without writing to the frame). Every edge is drop-oldest with room for
// one image, so a model that falls behind loses its own stale frames and
// nothing else: the slow person detector never stalls the face detector or
// the camera. Both models come with OpenCV, nothing to download: the HOG
// people detector is built in, the face cascade is Debian's opencv-data.
//
// Each frame a model ran on becomes one line of out/detections.jsonl
// (camera, time, frame id, the model's boxes); with -redis-url the same
// records also go to the Redis stream detections_<camera>. With -http the
// annotated branches are live MJPEG streams on a page.
//
// At the end it prints each model's rate and latency, then each node's
// counters from g.Stats().
//
//	go run ./examples/fan-out-models -input testdata/people.mp4      # pedestrians
//	go run ./examples/fan-out-models -http 127.0.0.1:8080 -duration 0
//	go run ./examples/fan-out-models -redis-url redis://localhost:6379 -camera door
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"text/tabwriter"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/cv"
	"github.com/chryscloud/chrysalis-go/examples/internal/excam"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/operator"
	"github.com/chryscloud/chrysalis-go/operator/convert"
	"github.com/chryscloud/chrysalis-go/sink"
	"github.com/chryscloud/chrysalis-go/source"
)

type config struct {
	peopleFPS, faceFPS float64
	upscale            float64
	faceWidth          int
	out, http          string
}

func main() {
	f := excam.Register(10 * time.Second)
	var c config
	flag.Float64Var(&c.peopleFPS, "people-fps", 2, "rate of the person detector (frames a second)")
	flag.Float64Var(&c.faceFPS, "face-fps", 5, "rate of the face detector (frames a second)")
	flag.Float64Var(&c.upscale, "upscale", 1.5, "enlarge frames by this factor for the person detector (its window is 128 px tall)")
	flag.IntVar(&c.faceWidth, "face-width", 384, "width of the gray image the face detector sees")
	flag.StringVar(&c.out, "out", "fan-out-models", "output `dir`: people/ and faces/ JPEGs, detections.jsonl")
	flag.StringVar(&c.http, "http", "", "serve the annotated streams as a live MJPEG page on this `addr` (e.g. 127.0.0.1:8080)")
	flag.Parse()
	if err := run(f, c); err != nil {
		fmt.Fprintln(os.Stderr, "fan-out-models:", err)
		os.Exit(1)
	}
}

func run(f *excam.Flags, c config) error {
	if c.peopleFPS <= 0 || c.faceFPS <= 0 || c.faceWidth <= 0 {
		return errors.New("-people-fps, -face-fps and -face-width must be positive")
	}
	// The models first: a missing cascade is a one-line error before any
	// camera starts.
	people, err := cv.NewHOG(cv.HOGOptions{Upscale: c.upscale, Scale: 1.1})
	if err != nil {
		return err
	}
	defer people.Close()
	faces, err := cv.NewCascade(cv.HaarFrontalFace, cv.CascadeOptions{Model: "haar-face", Label: "face", MinNeighbors: 5})
	if err != nil {
		return err
	}
	defer faces.Close()

	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	jsonl, err := os.Create(filepath.Join(c.out, "detections.jsonl"))
	if err != nil {
		return err
	}
	defer jsonl.Close()

	ctx, stop := f.Context()
	defer stop()
	cl, closeCache, err := f.Open(ctx)
	if err != nil {
		return err
	}
	defer closeCache()

	latest := flow.Edge{Buffer: 1, Policy: flow.DropOldest} // keep only the newest frame
	g := flow.New(flow.Options{})
	cam := g.Source("camera", source.Live(cl, f.Camera, chrysalis.CameraOptions{})) // full-size BGR24

	detectPeople, detectFaces := cv.Detect(people), cv.Detect(faces)
	p := g.Op("people", detectPeople, g.Op("throttle-people", operator.Throttle(c.peopleFPS), cam, latest), latest)
	small := &convert.Op{Width: c.faceWidth, Format: convert.GRAY8} // aspect ratio kept
	gray := g.Op("gray-small", small, g.Op("throttle-faces", operator.Throttle(c.faceFPS), cam, latest), latest)
	fc := g.Op("faces", detectFaces, gray, latest)

	// Both branches write one file: each line is one Write, serialized.
	// Their edges block: every detection is written (the sink is fast; a
	// stuck disk would slow the model, not lose its results).
	w := &lockedWriter{w: jsonl}
	peopleJSON, faceJSON := sink.DetectionsJSON(w, sink.DetectionsOptions{}), sink.DetectionsJSON(w, sink.DetectionsOptions{})
	g.Sink("people.jsonl", peopleJSON, p, flow.Edge{Buffer: 8, Policy: flow.Block})
	g.Sink("faces.jsonl", faceJSON, fc, flow.Edge{Buffer: 8, Policy: flow.Block})

	peopleJPEG := sink.ImageFiles(filepath.Join(c.out, "people"), sink.ImageOptions{})
	faceJPEG := sink.ImageFiles(filepath.Join(c.out, "faces"), sink.ImageOptions{})
	annPeople := g.Op("annotate-people", cv.Annotate(), p, latest)
	annFaces := g.Op("annotate-faces", cv.Annotate(), fc, latest)
	g.Sink("people-jpeg", peopleJPEG, annPeople, latest)
	g.Sink("faces-jpeg", faceJPEG, annFaces, latest)

	if f.RedisURL != "" { // detections as a stream other services read
		rdb, err := rediscache.NewClient(rediscache.ConnOptions{URL: f.RedisURL})
		if err != nil {
			return err
		}
		defer rdb.Close()
		g.Sink("people-redis", sink.DetectionsRedis(rdb, sink.RedisDetectionsOptions{}), p, latest)
		g.Sink("faces-redis", sink.DetectionsRedis(rdb, sink.RedisDetectionsOptions{}), fc, latest)
		fmt.Printf("detections to Redis stream %s\n", sink.DetectionsKey(f.Camera))
	}

	if c.http != "" { // the annotated frames, live
		preview := sink.NewMJPEGServer(sink.MJPEGOptions{})
		defer preview.Close()
		g.Sink("people-live", preview.Sink("people"), g.Op("annotate-people-live", cv.Annotate(), p, latest), latest)
		g.Sink("faces-live", preview.Sink("faces"), g.Op("annotate-faces-live", cv.Annotate(), fc, latest), latest)
		ln, err := net.Listen("tcp", c.http)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: preview.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		fmt.Printf("live: http://%s/\n", ln.Addr())
	}

	start := time.Now()
	err = g.Run(ctx) // until -duration or Ctrl-C (nil: a planned stop)
	took := time.Since(start)

	fmt.Printf("ran %s\n", took.Round(time.Millisecond))
	for _, m := range []struct {
		name string
		op   *cv.DetectOp
	}{{people.Name(), detectPeople}, {faces.Name(), detectFaces}} {
		s := m.op.Stats()
		fmt.Printf("model %-10s %4d frames  %5.2f fps  latency %6.1f ms  %d objects\n",
			m.name, s.Frames, float64(s.Frames)/took.Seconds(), float64(s.Latency.Microseconds())/1000, s.Objects)
	}
	fmt.Printf("detections.jsonl %d lines, JPEGs %d people + %d faces in %s\n",
		peopleJSON.Written()+faceJSON.Written(), peopleJPEG.Written(), faceJPEG.Written(), c.out)
	fmt.Println()
	// In counts images accepted into a node's input edge, Dropped those its
	// edge discarded to make room for newer ones, Out what the node emitted.
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "node\tkind\tinput edge\tin\tdropped\tout")
	for _, s := range g.Stats() {
		edge := "-"
		if s.Policy != "" {
			edge = fmt.Sprintf("%s/%d", s.Policy, s.Buffer)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", s.Name, s.Kind, edge, s.In, s.Dropped, s.Out)
	}
	tw.Flush()
	return err
}

// lockedWriter serializes the Writes of several sinks into one file.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
