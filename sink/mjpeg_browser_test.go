package sink_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/chryscloud/chrysalis-go/internal/testx"
	"github.com/chryscloud/chrysalis-go/sink"
)

// A real browser shows the preview page with a live picture: headless
// Chromium loads the page, and the <img> area of its screenshot is not
// blank.
func TestMJPEGBrowser(t *testing.T) {
	defer goleak.VerifyNone(t)
	testx.RequireChromium(t)
	frames := smallFrames(t)
	srv := sink.NewMJPEGServer(sink.MJPEGOptions{})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	defer srv.Close() // before ts.Close, which waits for streaming handlers
	in, stop := runSink(t, srv.Sink("cam"))

	// A 25 fps camera.
	pctx, pcancel := context.WithCancel(context.Background())
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case in <- frames.get(i):
			case <-pctx.Done():
				return
			}
			select {
			case <-tick.C:
			case <-pctx.Done():
				return
			}
		}
	}()
	defer func() { pcancel(); <-produced; stop() }()

	bctx, bcancel := testx.Browser(t, 1024, 768)
	defer bcancel()

	start := time.Now()
	if err := chromedp.Do(bctx, chromedp.Navigate(ts.URL+"/"), chromedp.Sleep(time.Second)); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	type imgInfo struct {
		X, Y, W, H, DPR float64
		NaturalWidth    int
		Complete        bool
	}
	info, err := chromedp.Run(bctx, chromedp.Evaluate[imgInfo](`(() => {
		const i = document.querySelector('img'), r = i.getBoundingClientRect();
		return {X: r.x, Y: r.y, W: r.width, H: r.height, DPR: window.devicePixelRatio, NaturalWidth: i.naturalWidth, Complete: i.complete};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	// SINK_SCREENSHOT_DIR keeps the screenshot after the test.
	dir := os.Getenv("SINK_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "preview.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%v after start); img %+v", path, time.Since(start).Round(time.Millisecond), info)
	if info.NaturalWidth != 640 || info.W < 100 || info.H < 50 {
		t.Fatalf("the <img> shows no 640-wide frame: %+v", info)
	}
	m, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	r := image.Rect(int(info.X*info.DPR), int(info.Y*info.DPR), int((info.X+info.W)*info.DPR), int((info.Y+info.H)*info.DPR)).Intersect(m.Bounds())
	v, mean := testx.LumaVariance(m, r)
	t.Logf("img area %v: luma mean %.1f, variance %.1f", r, mean, v)
	if v < 200 {
		t.Fatalf("the img area looks blank (variance %.1f)", v)
	}
	st := srv.Stats("cam")
	t.Logf("stream: %d images received, %d encoded, %d parts sent", st.Received, st.Encoded, st.Parts)

	bcancel()
}
