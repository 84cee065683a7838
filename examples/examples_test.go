// Package examples_test builds every example and runs them against the
// in-process demo camera, so the documentation stays runnable.
package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	// The examples are built by `go build`, which go test's result cache
	// does not see: linking what they use into this test binary makes a
	// change to the library re-run the test (see also build).
	_ "github.com/chryscloud/chrysalis-go/cv"
	_ "github.com/chryscloud/chrysalis-go/examples/internal/excam"
	_ "github.com/chryscloud/chrysalis-go/flow"
	_ "github.com/chryscloud/chrysalis-go/operator"
	_ "github.com/chryscloud/chrysalis-go/operator/convert"
	"github.com/chryscloud/chrysalis-go/sink"
	_ "github.com/chryscloud/chrysalis-go/sink/gocvwin"
	_ "github.com/chryscloud/chrysalis-go/source"

	"github.com/chryscloud/chrysalis-go/internal/testx"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// examples are the directories under examples/ holding a main package.
var examples = []string{"probe", "latest-window", "past-images", "screenshot", "fan-out-models", "record-on-motion"}

// TestExamples builds every example once, then runs them in parallel with
// short durations against the in-process cache.
func TestExamples(t *testing.T) {
	bin := t.TempDir()
	build(t, bin)

	t.Run("probe", func(t *testing.T) {
		t.Parallel()
		out := runExample(t, bin, "probe", nil)
		mustContain(t, out, "codec      h264 1280x720 yuv420p")
		if n := intAfter(t, out, `frames\s+(\d+),`); n < 40 {
			t.Errorf("probe saw %d frames, want >= 40 (2 s at 25 fps)", n)
		}
	})

	t.Run("past-images", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		out := runExample(t, bin, "past-images", nil, "-last", "2s", "-every", "1s", "-out", dir)
		if n := intAfter(t, out, `frames\s+(\d+) \(`); n < 45 || n > 55 {
			t.Errorf("past-images read %d frames over 2 s, want about 50", n)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
		if len(files) < 2 {
			t.Fatalf("past-images wrote %d JPEGs, want >= 2", len(files))
		}
		checkJPEG(t, files[0], 1280, 720)
	})

	t.Run("screenshot", func(t *testing.T) {
		t.Parallel()
		shot := filepath.Join(t.TempDir(), "shot.jpg")
		out := runExample(t, bin, "screenshot", nil, "-ago", "1s", "-width", "640", "-out", shot)
		mustContain(t, out, "picture type I")
		checkJPEG(t, shot, 640, 360)
	})

	t.Run("fan-out-models", func(t *testing.T) {
		t.Parallel()
		// Real footage with people (testdata/README.md): OpenCV's vtest.avi.
		dir := t.TempDir()
		out := runExample(t, bin, "fan-out-models", nil, "-input", "../testdata/people.mp4", "-duration", "6s", "-out", dir)
		people := intAfter(t, out, `model hog-people\s+(\d+) frames`)
		faces := intAfter(t, out, `model haar-face\s+(\d+) frames`)
		if people < 2 || faces < 2 {
			t.Errorf("people detector ran on %d frames, face detector on %d: want each >= 2 in 6 s", people, faces)
		}
		checkDetections(t, dir, people, faces)
	})

	t.Run("fan-out-models-live", func(t *testing.T) {
		t.Parallel()
		checkLive(t, bin)
	})

	t.Run("record-on-motion", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		// The demo box moves between 4 s and 7 s: its window ends at about
		// 9 s, and the clip is finalized when the run ends.
		out := runExample(t, bin, "record-on-motion", nil, "-duration", "12s", "-out", dir)
		clips, _ := filepath.Glob(filepath.Join(dir, "*.mp4"))
		if len(clips) == 0 {
			t.Fatalf("no clip written")
		}
		mustContain(t, out, "clip "+clips[0])
		b, err := os.ReadFile(clips[0])
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 10_000 || string(b[4:8]) != "ftyp" {
			t.Errorf("%s: %d bytes, starts %q: not an MP4", clips[0], len(b), b[:min(len(b), 8)])
		}
	})

	t.Run("latest-window", func(t *testing.T) {
		t.Parallel()
		env := []string{"DISPLAY=" + testx.Xvfb(t), "QT_X11_NO_MITSHM=1", "XDG_RUNTIME_DIR=" + t.TempDir()}
		for _, mode := range []string{"graph", "loop"} {
			t.Run(mode, func(t *testing.T) {
				t.Parallel()
				args := []string{"-duration", "3s"}
				if mode == "loop" {
					args = append(args, "-loop")
				}
				out := runExample(t, bin, "latest-window", env, args...)
				if n := intAfter(t, out, `showed (\d+) frames`); n < 10 {
					t.Errorf("showed %d frames in 3 s, want >= 10", n)
				}
			})
		}
	})
}

// build compiles every example into dir.
func build(t *testing.T, dir string) {
	t.Helper()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, e := range examples {
		args = append(args, "./"+e)
		// Reading the sources makes go test's result cache depend on them.
		files, _ := filepath.Glob(filepath.Join(e, "*.go"))
		if len(files) == 0 {
			t.Fatalf("example %s has no Go files", e)
		}
		for _, f := range files {
			if _, err := os.ReadFile(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	start := time.Now()
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built %d examples in %v", len(examples), time.Since(start).Round(time.Millisecond))
	for _, e := range examples {
		if _, err := os.Stat(filepath.Join(dir, e)); err != nil {
			t.Fatalf("example %s was not built: %v", e, err)
		}
	}
}

// runExample runs an example to completion and returns its standard
// output; it fails the test unless the example exits 0 in time.
func runExample(t *testing.T, bin, name string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %s: %v\n%s", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond), stdout.String())
	if err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", name, err, stderr.String())
	}
	return stdout.String()
}

// checkLive runs fan-out-models with -http and reads an annotated frame of
// each model from its live page while it runs.
func checkLive(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "fan-out-models"), "-input", "../testdata/people.mp4",
		"-duration", "20s", "-http", "127.0.0.1:0", "-out", t.TempDir())
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt) // a planned stop: exits 0
		if err := cmd.Wait(); err != nil {
			t.Errorf("fan-out-models -http: %v", err)
		}
	}()
	sc := bufio.NewScanner(stdout)
	var base string
	for base == "" && sc.Scan() {
		base, _ = strings.CutPrefix(sc.Text(), "live: ")
	}
	go io.Copy(io.Discard, stdout)
	if base == "" {
		t.Fatal("no live: URL printed")
	}
	for _, stream := range []string{"people", "faces"} {
		var img image.Image
		for img == nil && ctx.Err() == nil {
			resp, err := http.Get(base + "snapshot/" + stream + ".jpg")
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode == http.StatusOK {
				img, err = jpeg.Decode(resp.Body)
				if err != nil {
					t.Fatalf("%s snapshot: %v", stream, err)
				}
			}
			resp.Body.Close()
			if img == nil {
				time.Sleep(100 * time.Millisecond) // polling the page for its first frame
			}
		}
		if img == nil {
			t.Fatalf("no %s frame on the live page", stream)
		}
		t.Logf("live %s frame %v", stream, img.Bounds().Size())
	}
}

// checkDetections reads the fan-out-models example's detections.jsonl:
// one line per frame each model ran on; the person detector finds people
// in the pedestrian footage, and the annotated JPEG of each frame (named by
// the same frame id) has its boxes drawn in green.
func checkDetections(t *testing.T, dir string, people, faces int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "detections.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	models := map[string]int{}
	var persons, checked int
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var rec sink.DetectionRecord
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if len(rec.Detections) != 1 || rec.Camera != "demo" || rec.FrameID == "" {
			t.Fatalf("record %+v", rec)
		}
		d := rec.Detections[0]
		models[d.Model]++
		if d.Model != "hog-people" {
			if d.Width != 384 || d.Height != 288 { // the face branch's gray 384-px image
				t.Errorf("face detector saw %dx%d, want 384x288", d.Width, d.Height)
			}
			continue
		}
		if d.Width != 768 || d.Height != 576 {
			t.Errorf("person detector saw %dx%d, want the 768x576 frame", d.Width, d.Height)
		}
		persons += len(d.Objects)
		jpg := filepath.Join(dir, "people", "demo_"+rec.FrameID+".jpg")
		if _, err := os.Stat(jpg); err != nil || len(d.Objects) == 0 {
			continue // the JPEG sink's drop-oldest edge may have skipped it
		}
		checkJPEG(t, jpg, 768, 576)
		f, _ := os.Open(jpg)
		im, err := jpeg.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		box := d.Objects[0].Box
		r, g, bl, _ := im.At(box.Min.X, box.Min.Y+box.Dy()/2).RGBA() // on the box's left edge
		if g>>8 < 150 || r>>8 > 100 || bl>>8 > 100 {
			t.Errorf("%s: box %v not drawn in green: (%d,%d,%d)", jpg, box, r>>8, g>>8, bl>>8)
		}
		checked++
	}
	// One line per frame a model ran on; the frame in flight when the run
	// ends may be lost (the model ran, its result was never sent).
	if p, f := models["hog-people"], models["haar-face"]; p < people-1 || p > people || f < faces-1 || f > faces {
		t.Errorf("lines per model %v, want %d hog-people and %d haar-face (or one fewer)", models, people, faces)
	}
	// Four to five people walk through every frame of the clip.
	if people > 0 && float64(persons)/float64(people) < 2 {
		t.Errorf("%d people in %d frames: want at least 2 a frame", persons, people)
	}
	if checked == 0 {
		t.Error("no annotated JPEG of a frame with people")
	}
	t.Logf("detections.jsonl: %v lines, %d people, %d annotated JPEGs checked", models, persons, checked)
}

func mustContain(t *testing.T, out, want string) {
	t.Helper()
	if !strings.Contains(out, want) {
		t.Errorf("output lacks %q", want)
	}
}

// intAfter returns the integer captured by re's first group in out.
func intAfter(t *testing.T, out, re string) int {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output lacks %s", re)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func checkJPEG(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := jpeg.DecodeConfig(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if cfg.Width != w || cfg.Height != h {
		t.Errorf("%s is %dx%d, want %dx%d", path, cfg.Width, cfg.Height, w, h)
	}
}
