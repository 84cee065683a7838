// Package testx is test support shared by several packages' tests: the
// external tools a test needs (skipped when missing, failed under CI=true,
// where CI must exercise every path), loopback HTTP and ports, a virtual X
// display, and a headless Chromium driven by chromedp with a look at its
// screenshots.
package testx

import (
	"bufio"
	"bytes"
	"context"
	"image"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Require skips t when one of the named binaries is not on PATH, or fails
// it under CI=true.
func Require(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing(t, n+" not installed")
		}
	}
}

// missing skips t, or fails it under CI=true.
func missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " and CI=true")
	}
	t.Skip(msg)
}

// FreePort returns a loopback TCP port that nobody listened on a moment
// ago, for a server the test starts by address (ffmpeg, a CLI).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Get fetches url and returns the response with its body read (and
// closed). A transport or read error fails t.
func Get(t testing.TB, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// Xvfb starts a virtual X server (1280x1024x24, no TCP) on a free display
// and returns the display's name (":N"); it is stopped at test cleanup.
// Without Xvfb installed the test is skipped (failed under CI=true).
func Xvfb(t testing.TB) string {
	t.Helper()
	Require(t, "Xvfb")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// -displayfd: Xvfb picks a free display and writes its number to fd 3
	// once it accepts connections.
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1280x1024x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		w.Close()
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case n := <-line:
		if n == "" {
			t.Fatalf("Xvfb did not start: %s", stderr.String())
		}
		return ":" + n
	case <-time.After(10 * time.Second):
		t.Fatalf("Xvfb did not report a display: %s", stderr.String())
	}
	return ""
}

// ChromiumPath is the Chromium binary the browser tests drive (Debian's
// chromium package).
const ChromiumPath = "/usr/bin/chromium"

// RequireChromium skips t when Chromium is not installed at ChromiumPath,
// or fails it under CI=true. Call it before any expensive set-up.
func RequireChromium(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		missing(t, ChromiumPath+" not installed")
	}
}

// BrowserDeadline bounds a Browser's whole life.
const BrowserDeadline = 60 * time.Second

// Browser returns a chromedp context for a new headless Chromium with a
// fresh profile and a width x height window, plus the cancel func that
// closes the browser; extra adds allocator options (flags). The browser
// process starts with the first chromedp action on the context.
//
// A watchdog cancels the browser after BrowserDeadline, instead of a
// timeout on the first action, which would bound the browser's whole life.
// Call cancel when done, before any goroutine-leak check; it also runs at
// test cleanup. Browser calls RequireChromium.
func Browser(t testing.TB, width, height int, extra ...chromedp.ExecAllocatorOption) (context.Context, context.CancelFunc) {
	t.Helper()
	RequireChromium(t)
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}, extra...)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	watchdog := time.AfterFunc(BrowserDeadline, bcancel)
	cancel := func() {
		watchdog.Stop()
		bcancel()
		acancel()
	}
	t.Cleanup(cancel)
	return bctx, cancel
}

// LumaVariance returns the variance and mean of m's luma (0..255) over r,
// to tell a picture from a blank area in a screenshot.
func LumaVariance(m image.Image, r image.Rectangle) (v, mean float64) {
	var s, s2, n float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := m.At(x, y).RGBA()
			l := (0.299*float64(cr) + 0.587*float64(cg) + 0.114*float64(cb)) / 257
			s += l
			s2 += l * l
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	mean = s / n
	return s2/n - mean*mean, mean
}
