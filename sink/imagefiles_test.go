package sink_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/sink"
)

// toBGR converts a decoded image to packed BGR24.
func toBGR(m image.Image) []byte {
	b := m.Bounds()
	out := make([]byte, 0, b.Dx()*b.Dy()*3)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := m.At(x, y).RGBA()
			out = append(out, byte(bl>>8), byte(g>>8), byte(r>>8))
		}
	}
	return out
}

func decodeImage(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, _, err := image.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func TestImageFiles(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := loadClip(t, "clip720.mp4")
	imgs := f.images(t, chrysalis.CameraOptions{}, 0, 9)
	src := make([][]byte, len(imgs))
	for i, img := range imgs {
		src[i] = append([]byte(nil), img.Data...) // the sink releases the images
	}
	dir := t.TempDir()

	// A concurrent reader must never see a partial file.
	stopReader := make(chan struct{})
	var wg sync.WaitGroup
	var readErr error
	seen := map[string]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			matches, _ := filepath.Glob(filepath.Join(dir, "*", "*.jpg"))
			for _, m := range matches {
				if seen[m] {
					continue
				}
				seen[m] = true
				b, err := os.ReadFile(m)
				if err == nil {
					_, err = jpeg.DecodeConfig(strings.NewReader(string(b)))
				}
				if err != nil && readErr == nil {
					readErr = fmt.Errorf("%s: %w", m, err)
				}
			}
			select {
			case <-stopReader:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()

	var written []string
	w := sink.ImageFiles(dir, sink.ImageOptions{Pattern: "{camera}/{seq}_{ts}.jpg", OnWrite: func(p string) { written = append(written, p) }})
	start := time.Now()
	if err := w.Run(context.Background(), feed(context.Background(), imgs)); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	close(stopReader)
	wg.Wait()
	if readErr != nil {
		t.Fatalf("reader saw a partial file: %v", readErr)
	}
	if w.Written() != 10 || len(written) != 10 {
		t.Fatalf("Written %d, callbacks %d", w.Written(), len(written))
	}
	t.Logf("10 JPEGs 1280x720 q90 in %v (%.1f ms each, incl. -race if on)", el, float64(el.Microseconds())/10000)
	worst := 1e9
	for i := range 10 {
		want := filepath.Join(dir, "clip720.mp4", fmt.Sprintf("%06d_%d.jpg", i+1, testclip.MS(t0, i, step)))
		if written[i] != want {
			t.Fatalf("file %d: %s, want %s", i, written[i], want)
		}
		checkMode(t, want, 0o644)
		m := decodeImage(t, want)
		if b := m.Bounds(); b.Dx() != 1280 || b.Dy() != 720 {
			t.Fatalf("%s: %v", want, b)
		}
		worst = min(worst, testclip.PSNR(toBGR(m), src[i]))
	}
	t.Logf("JPEG q90 vs source BGR: worst PSNR %.1f dB", worst)
	if worst <= 30 {
		t.Fatalf("PSNR %.1f dB", worst)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "*", ".*")); len(tmp) > 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}

func TestImageFilesEvery(t *testing.T) {
	f := loadClip(t, "clip720.mp4")
	imgs := f.images(t, chrysalis.CameraOptions{Width: 320, Height: 180}, 0, 110)
	dir := t.TempDir()
	w := sink.ImageFiles(dir, sink.ImageOptions{Every: time.Second})
	if err := w.Run(context.Background(), feed(context.Background(), imgs)); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	var want []string
	for i := range 4 {
		want = append(want, fmt.Sprintf("clip720.mp4_%d-0.jpg", t0+int64(i)*1000))
	}
	if w.Written() != 4 || !slices.Equal(names, want) {
		t.Fatalf("Every=1s over 4 s of frames wrote %d files %v, want %v", w.Written(), names, want)
	}
}

// Frames that share a millisecond (a burst) get one file each, named by
// their cache id; images without a cache id, and names already taken by
// an earlier file, get a counter suffix: no file is ever replaced.
func TestImageFilesUniqueNames(t *testing.T) {
	f := loadClip(t, "clip720.mp4")
	dir := t.TempDir()
	// An earlier file holding the name the first id-less image maps to.
	old := filepath.Join(dir, fmt.Sprintf("clip720.mp4_%d-0.jpg", t0))
	if err := os.WriteFile(old, []byte("earlier"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		id   func(i int) cache.ID
		want func(i int) string
	}{
		{"burst ids", func(i int) cache.ID { return cache.ID{MS: uint64(t0) + 1, Seq: uint64(i)} },
			func(i int) string { return fmt.Sprintf("clip720.mp4_%d-%d.jpg", t0+1, i) }},
		{"no ids", func(int) cache.ID { return cache.ID{} },
			func(i int) string { return fmt.Sprintf("clip720.mp4_%d-0_%d.jpg", t0, i+2) }}, // _2.. : the bare name is taken
	} {
		t.Run(tc.name, func(t *testing.T) {
			imgs := f.images(t, chrysalis.CameraOptions{Width: 160, Height: 90}, 0, 24)
			for i, img := range imgs {
				img.ID, img.Time = tc.id(i), time.UnixMilli(t0) // all in one millisecond
			}
			var written []string
			w := sink.ImageFiles(dir, sink.ImageOptions{OnWrite: func(p string) { written = append(written, p) }})
			if err := w.Run(context.Background(), feed(context.Background(), imgs)); err != nil {
				t.Fatal(err)
			}
			if w.Written() != int64(len(imgs)) || len(written) != len(imgs) {
				t.Fatalf("%d images: Written %d, %d callbacks", len(imgs), w.Written(), len(written))
			}
			for i, p := range written {
				if want := filepath.Join(dir, tc.want(i)); p != want {
					t.Fatalf("file %d: %s, want %s", i, p, want)
				}
				decodeImage(t, p)
			}
		})
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if len(files) != 1+2*25 {
		t.Fatalf("%d files, want 51 (one earlier, 25 per run)", len(files))
	}
	if b, _ := os.ReadFile(old); string(b) != "earlier" {
		t.Fatalf("the earlier file was replaced")
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".*")); len(tmp) > 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}

// A pattern without a per-frame placeholder names one file ("latest.jpg")
// that each image replaces.
func TestImageFilesFixedNameReplaces(t *testing.T) {
	f := loadClip(t, "clip720.mp4")
	dir := t.TempDir()
	imgs := f.images(t, chrysalis.CameraOptions{Width: 160, Height: 90}, 0, 4)
	w := sink.ImageFiles(dir, sink.ImageOptions{Format: "png", Pattern: "latest.png"})
	last := append([]byte(nil), imgs[len(imgs)-1].Data...)
	if err := w.Run(context.Background(), feed(context.Background(), imgs)); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 1 || w.Written() != 5 {
		t.Fatalf("files %v, written %d: want latest.png alone, 5 writes", files, w.Written())
	}
	fh, err := os.Open(filepath.Join(dir, "latest.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	m, err := png.Decode(fh)
	if err != nil {
		t.Fatal(err)
	}
	rgba := image.NewRGBA(m.Bounds())
	draw.Draw(rgba, rgba.Rect, m, image.Point{}, draw.Src)
	img := &chrysalis.ChImage{Width: 160, Height: 90, Stride: 480, Data: last}
	if want := img.ToRGBA(); !bytes.Equal(rgba.Pix, want.Pix) {
		t.Fatal("latest.png is not the last image")
	}
}

// PNG is lossless: RGB24 and GRAY8 images come back exactly.
func TestImageFilesPNG(t *testing.T) {
	f := loadClip(t, "clip720.mp4")
	for _, tc := range []struct {
		pf   chrysalis.PixelFormat
		gray bool
	}{{chrysalis.RGB24, false}, {chrysalis.GRAY8, true}, {chrysalis.BGR24, false}} {
		t.Run(tc.pf.String(), func(t *testing.T) {
			imgs := f.images(t, chrysalis.CameraOptions{Format: tc.pf, Width: 320, Height: 180}, 0, 0)
			src := append([]byte(nil), imgs[0].Data...)
			dir := t.TempDir()
			w := sink.ImageFiles(dir, sink.ImageOptions{Format: "png", Pattern: "{time}.png"})
			if err := w.Run(context.Background(), feed(context.Background(), imgs)); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "20250615T150640.000Z.png")
			fh, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			m, err := png.Decode(fh)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			switch {
			case tc.gray:
				g, ok := m.(*image.Gray)
				if !ok {
					t.Fatalf("decoded %T, want *image.Gray", m)
				}
				got = g.Pix
			case tc.pf == chrysalis.RGB24:
				for _, px := range slices.Collect(slices.Chunk(toBGR(m), 3)) {
					got = append(got, px[2], px[1], px[0])
				}
			default:
				got = toBGR(m)
			}
			if !slices.Equal(got, src) {
				t.Fatal("pixels differ")
			}
		})
	}
}

func TestImageFilesOptions(t *testing.T) {
	for _, o := range []sink.ImageOptions{
		{Format: "gif"},
		{Quality: 101},
		{Pattern: "{camera}_{nope}.jpg"},
		{Pattern: "../{ts}.jpg"},
		{Every: -time.Second},
	} {
		w := sink.ImageFiles(t.TempDir(), o)
		in := make(chan flow.Image)
		close(in)
		if err := w.Run(context.Background(), in); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	// Cancelling ends Run with ctx.Err().
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sink.ImageFiles(t.TempDir(), sink.ImageOptions{}).Run(ctx, make(chan flow.Image)); err != context.Canceled {
		t.Errorf("Run on a cancelled ctx: %v", err)
	}
}
