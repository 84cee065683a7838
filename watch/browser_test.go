package watch_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testx"
	"github.com/chryscloud/chrysalis-go/watch"
	"github.com/chryscloud/chrysalis-go/watch/hls"
)

// The watch page in headless Chromium over a live 25 fps camera: the live
// picture shows, the probe reads fps/size/codec, the screenshot control
// loads an image, the export link gives an MP4 of the chosen length, and
// the HLS player plays.
func TestBrowser(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after the other cleanups
	testx.RequireChromium(t)
	clip := testclip.Load(t, "clip720.mp4")
	mc := cache.NewMemory(cache.Retention{MaxAge: 30 * time.Second})
	t.Cleanup(func() { mc.Close() })
	// A camera that has been running for 5 s.
	clip.Live(t, mc, "cam", 5*time.Second)
	cl := chrysalis.New(mc, chrysalis.Options{})
	_, ts := server(t, watch.Options{Client: cl, Cameras: []string{"cam"},
		HLS: hls.ServerOptions{Options: hls.Options{SegmentDuration: time.Second, ListSize: 3}}})

	bctx, bcancel := testx.Browser(t, 1280, 1400, chromedp.Flag("autoplay-policy", "no-user-gesture-required"))
	defer bcancel()

	start := time.Now()
	const card = `article[data-camera="cam"]`
	if err := chromedp.Do(bctx, chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(card+` img.live`)); err != nil {
		t.Fatalf("navigate: %v", err)
	}

	// The live picture.
	waitJS(t, bctx, "the live image", `document.querySelector('`+card+` img.live').naturalWidth > 0`, 15*time.Second)
	time.Sleep(300 * time.Millisecond) // let a few parts replace the first
	live, err := chromedp.Run(bctx, chromedp.Screenshot(card+` img.live`, chromedp.NodeVisible))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	livePath := filepath.Join(dir, "live.png")
	if err := os.WriteFile(livePath, live, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := png.Decode(bytes.NewReader(live))
	if err != nil {
		t.Fatal(err)
	}
	v, mean := testx.LumaVariance(m, m.Bounds())
	t.Logf("live <img> screenshot %s: %v, luma mean %.1f, variance %.1f (%v after start)", livePath, m.Bounds().Size(), mean, v,
		time.Since(start).Round(time.Millisecond))
	if v < 200 {
		t.Fatalf("the live image looks blank (variance %.1f)", v)
	}
	if natural := eval[int](t, bctx, `document.querySelector('`+card+` img.live').naturalWidth`); natural != 1280 {
		t.Fatalf("live image is %d wide, want 1280", natural)
	}

	// The probe.
	waitJS(t, bctx, "the probe text", `/fps/.test(document.querySelector('`+card+` .probe').textContent)`, 15*time.Second)
	probe := eval[string](t, bctx, `document.querySelector('`+card+` .probe').textContent`)
	t.Logf("probe: %s", probe)
	if !strings.Contains(probe, "h264 1280x720") || !strings.Contains(probe, "fps") {
		t.Fatalf("probe text %q lacks codec, size or fps", probe)
	}
	fps, _ := strconv.ParseFloat(strings.Fields(strings.Split(probe, "·")[1])[0], 64)
	if fps < 20 || fps > 30 {
		t.Fatalf("probe fps %.2f, want about 25", fps)
	}

	// The screenshot control: 2 s ago.
	if err := chromedp.Do(bctx,
		chromedp.SetValue(card+` .shot-ago`, "2"),
		chromedp.Click(card+` button.shot`),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the screenshot", `document.querySelector('`+card+` img.shot').naturalWidth > 0`, 10*time.Second)
	shot := eval[struct {
		W    int    `json:"w"`
		Info string `json:"info"`
	}](t, bctx, `({w: document.querySelector('`+card+` img.shot').naturalWidth, info: document.querySelector('`+card+` .shot-info').textContent})`)
	t.Logf("screenshot: %d wide, %q", shot.W, shot.Info)
	if shot.W != 1280 || !strings.Contains(shot.Info, "keyframe at") {
		t.Fatalf("screenshot %+v", shot)
	}

	// The export control: 3 s. Its link is fetched over HTTP and probed.
	href := eval[string](t, bctx, `(() => {
		const i = document.querySelector('`+card+` .export-last');
		i.value = '3';
		i.dispatchEvent(new Event('input'));
		return document.querySelector('`+card+` a.export').href;
	})()`)
	if !strings.HasSuffix(href, "/api/export/cam?last=3s") {
		t.Fatalf("export link %q", href)
	}
	r := get(t, href)
	if r.code != 200 || r.h.Get("Content-Type") != "video/mp4" {
		t.Fatalf("export: %d %q", r.code, r.body[:min(100, len(r.body))])
	}
	info := probeMP4(t, r.body)
	frames, _ := strconv.Atoi(r.h.Get("X-Frames"))
	t.Logf("export %s: %d bytes, %+v (X-Frames %d)", href, len(r.body), info, frames)
	// From the keyframe at or before the window: 3 s plus up to one GOP
	// (2 s) earlier.
	if info.Codec != "h264" || info.Frames != frames || info.Duration < 2.9 || info.Duration > 5.1 ||
		float64(info.Frames) < info.Duration*25-2 || float64(info.Frames) > info.Duration*25+2 {
		t.Fatalf("export: %+v, X-Frames %d: want 3..5 s at 25 fps", info, frames)
	}

	// The node counters.
	waitJS(t, bctx, "node counters", `document.querySelectorAll('#nodes tr[data-node]').length >= 2`, 15*time.Second)

	// HLS through hls.js, where this Chromium has H.264 in MSE.
	if !eval[bool](t, bctx, `!!(window.MediaSource && MediaSource.isTypeSupported('video/mp4; codecs="avc1.640028"'))`) {
		t.Logf("this Chromium has no H.264 Media Source support: HLS playback not checked (the playlist is checked by watch/hls tests)")
	} else {
		hlsStart := time.Now()
		if err := chromedp.Do(bctx, chromedp.Click(card+` button.hls-play`)); err != nil {
			t.Fatal(err)
		}
		waitJS(t, bctx, "HLS playback", `(() => { const v = document.querySelector('`+card+` video.hls'); return v.readyState >= 2 && v.videoWidth === 1280 && v.currentTime > 0; })()`, 20*time.Second)
		hinfo := eval[string](t, bctx, `document.querySelector('`+card+` .hls-info').textContent + ' t=' + document.querySelector('`+card+` video.hls').currentTime.toFixed(2)`)
		t.Logf("HLS playing after %v: %s", time.Since(hlsStart).Round(time.Millisecond), hinfo)
	}

	if page, err := chromedp.Run(bctx, chromedp.FullScreenshot(80)); err == nil {
		p := filepath.Join(dir, "page.jpg")
		if d := os.Getenv("WATCH_SCREENSHOT_DIR"); d != "" {
			p = filepath.Join(d, "page.jpg")
		}
		os.WriteFile(p, page, 0o644)
		t.Logf("page screenshot %s", p)
	}
	bcancel()
}

// eval evaluates a JS expression in the page.
// waitJS polls the boolean JS expression expr in the page of ctx every
// 100 ms until it holds, failing t with what after within.
func waitJS(t *testing.T, ctx context.Context, what, expr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !eval[bool](t, ctx, expr) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (%s)", within, what, expr)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}
