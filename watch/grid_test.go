package watch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testx"
	"github.com/chryscloud/chrysalis-go/watch"
)

// The grid page with 16 live cameras in headless Chromium: the 16 tiles
// fit the window (no scrolling), each shows a non-blank picture (checked
// on the screenshot's pixels), its age and an fps of about 25; camera 0's
// detection box is drawn over its tile and no other; a click opens the
// single-camera view. The page's requests are counted to show the
// refresh cost.
func TestGridBrowser(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after the other cleanups
	testx.RequireChromium(t)
	const n = 16
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{MaxAge: 20 * time.Second})
	t.Cleanup(func() { mc.Close() })
	cams := make([]string, n)
	for i := range cams {
		cams[i] = fmt.Sprintf("cam%02d", i)
		clip.Live(t, mc, cams[i], 3*time.Second)
	}
	cl := chrysalis.New(mc, chrysalis.Options{})
	box := watch.Detection{X: 0.25, Y: 0.25, W: 0.5, H: 0.5, Label: "person", Score: 0.9}
	w, err := watch.New(watch.Options{Client: cl, Cameras: cams, DisableHLS: true, Logger: testLogger(t),
		Detections: func(cam string) []watch.Detection {
			if cam == "cam00" {
				return []watch.Detection{box}
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	var tileReqs, tilesReqs atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/tile/"):
			tileReqs.Add(1)
		case r.URL.Path == "/api/tiles":
			tilesReqs.Add(1)
		}
		w.Handler().ServeHTTP(rw, r)
	}))
	t.Cleanup(func() {
		cancel()
		<-errc
		ts.Close()
	})

	const vw, vh = 1600, 900
	bctx, bcancel := testx.Browser(t, vw, vh)
	defer bcancel()
	start := time.Now()
	if err := chromedp.Do(bctx, chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(`body[data-ready="1"]`)); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	waitJS(t, bctx, "16 tile images", `document.querySelectorAll('a.tile[data-loaded="1"]').length === 16`, 20*time.Second)
	loaded := time.Since(start)
	waitJS(t, bctx, "every tile's fps", `[...document.querySelectorAll('a.tile')].every((a) => Number(a.dataset.fps) > 0)`, 10*time.Second)

	// The layout fits the window.
	fit := eval[struct {
		Cols           string
		SW, SH, IW, IH int
	}](t, bctx, `({Cols: document.getElementById('grid').dataset.cols, SW: document.documentElement.scrollWidth,
		SH: document.documentElement.scrollHeight, IW: innerWidth, IH: innerHeight})`)
	t.Logf("16 tiles loaded %v after navigation; layout %s columns, page %dx%d in a %dx%d window", loaded.Round(time.Millisecond),
		fit.Cols, fit.SW, fit.SH, fit.IW, fit.IH)
	if fit.SW > fit.IW || fit.SH > fit.IH {
		t.Errorf("the grid does not fit the window: page %dx%d, window %dx%d", fit.SW, fit.SH, fit.IW, fit.IH)
	}

	type tile struct {
		Cam        string
		X, Y, W, H float64
		Info       string
		FPS, Age   float64
	}
	tiles := eval[[]tile](t, bctx, `[...document.querySelectorAll('a.tile')].map((a) => {
		const r = a.querySelector('.frame').getBoundingClientRect();
		return {Cam: a.dataset.camera, X: r.x, Y: r.y, W: r.width, H: r.height, Info: a.querySelector('.info').textContent,
			FPS: Number(a.dataset.fps), Age: Number(a.dataset.age)};
	})`)
	shot, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if d := os.Getenv("WATCH_SCREENSHOT_DIR"); d != "" {
		dir = d
	}
	path := filepath.Join(dir, "grid16.png")
	os.WriteFile(path, shot, 0o644)
	m, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	sx := float64(m.Bounds().Dx()) / vw // device pixels per CSS pixel
	t.Logf("screenshot %s: %v", path, m.Bounds().Size())
	if len(tiles) != n {
		t.Fatalf("%d tiles, want %d", len(tiles), n)
	}
	for i, tl := range tiles {
		r := image.Rect(int(tl.X*sx)+2, int(tl.Y*sx)+2, int((tl.X+tl.W)*sx)-2, int((tl.Y+tl.H)*sx)-2)
		v, mean := testx.LumaVariance(m, r)
		// The box's top edge: a row of box-coloured pixels across its
		// width (the image fills the 16:9 frame).
		edge := image.Rect(int((tl.X+box.X*tl.W)*sx)+4, int((tl.Y+box.Y*tl.H)*sx)-1,
			int((tl.X+(box.X+box.W)*tl.W)*sx)-4, int((tl.Y+box.Y*tl.H)*sx)+2)
		onEdge := float64(greenPixels(m, edge)) / float64(edge.Dx())
		t.Logf("%s: %v, luma mean %.1f variance %.1f, box-coloured pixels on the box's top edge %.2f per column, caption %q",
			tl.Cam, r.Size(), mean, v, onEdge, tl.Info)
		if tl.Cam != cams[i] || r.Dx() < 200 || v < 200 {
			t.Errorf("%s (want %s): tile %v looks blank or too small (variance %.1f)", tl.Cam, cams[i], r, v)
		}
		if tl.FPS < 20 || tl.FPS > 30 || tl.Age > 3000 || !strings.Contains(tl.Info, "fps") {
			t.Errorf("%s: fps %.1f, age %.0f ms, caption %q: want about 25 fps and a fresh frame", tl.Cam, tl.FPS, tl.Age, tl.Info)
		}
		switch {
		case i == 0 && onEdge < 1:
			t.Errorf("%s: the detection box is not drawn (%.2f box pixels per column on its edge)", tl.Cam, onEdge)
		case i > 0 && onEdge > 0.2:
			t.Errorf("%s: a box is drawn where no detection is (%.2f per column)", tl.Cam, onEdge)
		}
	}

	// The refresh cost over 3 s.
	t1, ts1 := tileReqs.Load(), tilesReqs.Load()
	time.Sleep(3 * time.Second) // a measuring window, not a wait for a condition
	t.Logf("over 3 s: %d tile images and %d /api/tiles polls for 16 tiles", tileReqs.Load()-t1, tilesReqs.Load()-ts1)
	if got := tilesReqs.Load() - ts1; got > 5 {
		t.Errorf("%d /api/tiles polls in 3 s, want about 3", got)
	}
	// A keyframe every 2 s: about 16 × 1.5 new tile images in 3 s.
	if got := tileReqs.Load() - t1; got > 16*2+4 {
		t.Errorf("%d tile images in 3 s for 16 tiles, want one per keyframe", got)
	}

	// A smaller window: the grid is laid out again and still fits.
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(900, 600)); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("at 900x600: %s", eval[string](t, bctx, `JSON.stringify({iw: innerWidth, ih: innerHeight, sw: document.documentElement.scrollWidth,
				sh: document.documentElement.scrollHeight, tw: document.querySelector('a.tile').getBoundingClientRect().width,
				cols: document.getElementById('grid').dataset.cols, gh: document.getElementById('grid').clientHeight})`))
		}
	}()
	waitJS(t, bctx, "the grid to fit 900x600", `innerWidth === 900 && document.documentElement.scrollHeight <= innerHeight &&
		document.documentElement.scrollWidth <= innerWidth && document.querySelector('a.tile').getBoundingClientRect().width < `+fmt.Sprint(tiles[0].W-20), 5*time.Second)
	t.Logf("at 900x600: %s columns, tiles %.0f px wide", eval[string](t, bctx, `document.getElementById('grid').dataset.cols`),
		eval[float64](t, bctx, `document.querySelector('a.tile').getBoundingClientRect().width`))

	// A click opens the single-camera view.
	if err := chromedp.Do(bctx, chromedp.Click(`a.tile[data-camera="cam03"]`),
		chromedp.WaitVisible(`article[data-camera="cam03"] img.live`)); err != nil {
		t.Fatal(err)
	}
	if k := eval[int](t, bctx, `document.querySelectorAll('article.camera').length`); k != 1 {
		t.Errorf("the single-camera view shows %d cameras", k)
	}
	if u := eval[string](t, bctx, `location.search`); u != "?camera=cam03" {
		t.Errorf("single view at %q", u)
	}
	if !eval[bool](t, bctx, `document.getElementById('grid-link') !== null`) {
		t.Error("the single view has no link back to the grid")
	}
	bcancel()
}

// greenPixels counts the pixels of the detection box colour (#00ff66) in r.
func greenPixels(m image.Image, r image.Rectangle) int {
	k := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := m.At(x, y).RGBA()
			if cr>>8 < 60 && cg>>8 > 200 && cb>>8 > 60 && cb>>8 < 150 {
				k++
			}
		}
	}
	return k
}

// /api/tiles and /api/tile: every camera's age, fps and image key; a tile
// image is a JPEG of the asked width; bad requests are 4xx.
func TestTilesAPI(t *testing.T) {
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{MaxAge: 20 * time.Second})
	t.Cleanup(func() { mc.Close() })
	clip.Live(t, mc, "a", 3*time.Second)
	mc.SetCodec(context.Background(), "empty", clip.CacheCodec())
	cl := chrysalis.New(mc, chrysalis.Options{})
	_, ts := server(t, watch.Options{Client: cl, Cameras: []string{"a", "empty"}, DisableHLS: true})

	type doc struct{ Tiles []watch.TileInfo }
	var d doc
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := get(t, ts.URL+"/api/tiles")
		if err := json.Unmarshal(r.body, &d); err != nil || len(d.Tiles) != 2 {
			t.Fatalf("/api/tiles: %d %q", r.code, r.body)
		}
		if d.Tiles[0].FPS > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tile a reports no fps after 15 s: %+v", d.Tiles[0])
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
	a, e := d.Tiles[0], d.Tiles[1]
	t.Logf("tiles: %+v / %+v", a, e)
	if a.Camera != "a" || a.FPS < 20 || a.FPS > 30 || a.AgeMS > 1000 || a.Image != "api/tile/a" || a.Key == "" || a.Error != "" {
		t.Errorf("tile a: %+v", a)
	}
	if e.Camera != "empty" || e.Error != "no frames yet" {
		t.Errorf("tile empty: %+v", e)
	}
	r := get(t, ts.URL+"/api/tile/a?w=400")
	if r.code != 200 || r.h.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("tile: %d %q", r.code, r.body)
	}
	img, _, err := image.Decode(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != 400 || img.Bounds().Dy() != 224 && img.Bounds().Dy() != 225 {
		t.Errorf("tile %v, want 400 wide, 16:9", img.Bounds().Size())
	}
	for _, c := range []struct {
		path string
		code int
	}{{"/api/tile/a?w=abc", 400}, {"/api/tile/nope", 404}, {"/api/tile/empty", 404}} {
		if r := get(t, ts.URL+c.path); r.code != c.code {
			t.Errorf("%s: %d %q, want %d", c.path, r.code, r.body, c.code)
		}
	}
	// Several cameras: / is the grid, ?camera= the single view.
	if r := get(t, ts.URL+"/"); !bytes.Contains(r.body, []byte("grid.js")) {
		t.Errorf("/ with two cameras is not the grid")
	}
	if r := get(t, ts.URL+"/?camera=a"); !bytes.Contains(r.body, []byte("watch.js")) {
		t.Errorf("/?camera=a is not the single view")
	}
}
