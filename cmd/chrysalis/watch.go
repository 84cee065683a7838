package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/watch"
)

// watchConfig is what `chrysalis watch` runs.
type watchConfig struct {
	redis        redisFlags
	cameras      []string
	httpAddr     string
	verbose      bool
	timeout      time.Duration
	noHLS        bool
	previewFPS   float64
	previewWidth int
	allowHosts   []string
	token        string
	maxExports   int
	maxExport    time.Duration
	archive      string
}

// watchTokenEnv names the environment variable --token defaults to. It is
// read at run time, never shown as the flag's default in --help.
const watchTokenEnv = "CHRYSALIS_WATCH_TOKEN"

func newWatchCmd() *cobra.Command {
	var wc watchConfig
	c := &cobra.Command{
		Use:   "watch --camera ID [--camera ID2 ...] [--http 127.0.0.1:8080]",
		Short: "Serve a web page: live view, probe, screenshots, MP4 export and HLS of cameras",
		Long: `watch serves a web page showing, for each camera in the cache: the live
picture, its probe (span, fps, size, codec, refreshed every 2 s), a screenshot
at a chosen time, an MP4 export of the last seconds (remuxed, no re-encode)
and an HLS player (/hls/<camera>/index.m3u8, also for ffplay or VLC). With
several cameras the page is a grid of tiles fitted to the window (newest
image, age, fps); a click opens one camera. /metrics (Prometheus), /healthz
and /readyz are served on the same address.

It serves on 127.0.0.1 unless --http names another address. It answers only
requests addressed to localhost, the address it is bound to, and the names
given with --allow-host (others get 421: this defeats DNS rebinding, where a
web page on another site reads the cameras through your browser).

Bound beyond loopback it requires a bearer token: --token or the
CHRYSALIS_WATCH_TOKEN environment variable, or a random one is made and printed
in the page URL (?token=...; the browser then keeps it in a cookie). Open
the page as http://HOST:PORT/?token=TOKEN. API clients send
"Authorization: Bearer TOKEN". Anyone with the token sees every camera; the
connection is plain HTTP, so put a TLS proxy in front to cross an untrusted
network.

Exports are limited to --max-exports at once (429 beyond) and --max-export
long.

With --archive DIR (the --out of chrysalis record) the page adds a Recording
panel: each camera's store switch with a button, whether a segment is being
written, and the last segments as links.`,
		Example: `  chrysalis watch --redis-url redis://localhost:6379 --camera cam1
  chrysalis watch --camera cam1 --camera door --http 127.0.0.1:9000
  CHRYSALIS_WATCH_TOKEN=$(openssl rand -hex 16) chrysalis watch --camera cam1 --http 0.0.0.0:8080 --allow-host cams.lan`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runWatch(cmd.Context(), cmd.OutOrStdout(), wc) },
	}
	f := c.Flags()
	wc.redis.register(c)
	f.StringArrayVar(&wc.cameras, "camera", nil, "camera id (required; repeat for more cameras)")
	f.StringVar(&wc.httpAddr, "http", "127.0.0.1:8080", "address to serve the page on (host:port; port 0 picks a free one)")
	f.BoolVarP(&wc.verbose, "verbose", "v", false, "debug logging")
	f.DurationVar(&wc.timeout, "connect-timeout", 10*time.Second, "give up connecting to Redis after this long")
	f.BoolVar(&wc.noHLS, "no-hls", false, "do not serve HLS")
	f.Float64Var(&wc.previewFPS, "preview-fps", watch.DefaultPreviewFPS, "live view frames per second")
	f.IntVar(&wc.previewWidth, "preview-width", 0, "resize the live view to this width (0: the camera's)")
	f.StringArrayVar(&wc.allowHosts, "allow-host", nil, "also answer requests for this host name or address (repeatable; besides localhost and the bound address)")
	f.StringVar(&wc.token, "token", "", "bearer token every request must present (env "+watchTokenEnv+"; made up when bound beyond loopback)")
	f.IntVar(&wc.maxExports, "max-exports", watch.DefaultMaxConcurrentExports, "exports running at once; more are answered 429")
	f.DurationVar(&wc.maxExport, "max-export", watch.DefaultMaxExport, "longest export window (?last=)")
	f.StringVar(&wc.archive, "archive", "", "record archive (the --out of chrysalis record): show its last segments")
	return c
}

func runWatch(ctx context.Context, stdout io.Writer, wc watchConfig) error {
	if len(wc.cameras) == 0 {
		return usagef("no camera: pass --camera ID (repeat it for more cameras)")
	}
	for i, c := range wc.cameras {
		switch {
		case strings.TrimSpace(c) == "":
			return usagef("--camera is empty")
		case slices.Index(wc.cameras, c) != i:
			return usagef("--camera %q given twice", c)
		}
	}
	host, port, err := net.SplitHostPort(wc.httpAddr)
	if err != nil || port == "" {
		return usagef("bad --http %q: want host:port such as 127.0.0.1:8080", wc.httpAddr)
	}
	if wc.previewFPS <= 0 {
		return usagef("--preview-fps must be positive")
	}
	if wc.previewWidth < 0 {
		return usagef("--preview-width must not be negative")
	}
	if wc.maxExports <= 0 || wc.maxExport <= 0 {
		return usagef("--max-exports and --max-export must be positive")
	}
	for _, h := range wc.allowHosts {
		if strings.TrimSpace(h) == "" || strings.ContainsAny(h, "/ ") {
			return usagef("bad --allow-host %q: want a host name or address without port, like cams.lan", h)
		}
	}
	if wc.token == "" {
		wc.token = os.Getenv(watchTokenEnv)
	}
	if wc.redis.url == "" {
		return usagef("no Redis: pass --redis-url redis://host:6379 or set CHRYSALIS_REDIS_URL")
	}
	if err := checkRedisURL(wc.redis.url); err != nil {
		return err
	}
	log, resetLog := setupLogging(wc.verbose)
	defer resetLog()

	ln, err := net.Listen("tcp", wc.httpAddr)
	if err != nil {
		return usagef("cannot serve on --http %s: %v (pick another, e.g. --http 127.0.0.1:0)", wc.httpAddr, err)
	}
	defer ln.Close()
	allowed := append(boundHosts(host), wc.allowHosts...)
	madeUp := false
	if !isLoopbackHost(host) && wc.token == "" {
		madeUp = true
		if wc.token, err = randomToken(); err != nil {
			return err
		}
		log.Warn("serving beyond this machine with a token made up for this run; set --token or " + watchTokenEnv + " to choose it")
	}

	dctx, cancel := context.WithTimeout(ctx, wc.timeout)
	rc, err := wc.redis.dial(dctx, rediscache.Options{Logger: log})
	cancel()
	if err != nil {
		return err
	}
	defer rc.Close()
	cl := chrysalis.New(rc, chrysalis.Options{Logger: log})
	if err := checkCameras(ctx, cl, wc.cameras, log.Warn); err != nil {
		return err
	}

	w, err := watch.New(watch.Options{Client: cl, Cameras: wc.cameras, DisableHLS: wc.noHLS,
		PreviewFPS: wc.previewFPS, PreviewWidth: wc.previewWidth, Logger: log,
		AllowedHosts: allowed, Token: wc.token, MaxConcurrentExports: wc.maxExports, MaxExport: wc.maxExport,
		Archive: wc.archive})
	if err != nil {
		return err
	}
	page := pageURL(ln.Addr())
	if madeUp {
		page += "?token=" + url.QueryEscape(wc.token) // the user's only way to learn it: stdout, never the log
	}
	fmt.Fprintf(stdout, "chrysalis watch: %s at %s (Ctrl-C to stop)\n", strings.Join(wc.cameras, ", "), page)

	srv := &http.Server{Handler: w.Handler(), ReadHeaderTimeout: 5 * time.Second}
	eg, egCtx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	eg.Go(func() error {
		_ = w.Run(egCtx) // returns once egCtx ends, streams ended
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		return nil
	})
	err = eg.Wait()
	if err == nil || errors.Is(err, context.Canceled) {
		return nil // Ctrl-C
	}
	return err
}

// checkCameras fails for a camera the cache does not know (exit 4); one
// that is known but holds no frames yet is only warned about.
func checkCameras(ctx context.Context, cl *chrysalis.Client, cameras []string, warn func(string, ...any)) error {
	for _, id := range cameras {
		cam := cl.Camera(id, chrysalis.CameraOptions{})
		_, err := cam.Probe(ctx)
		cam.Close()
		switch {
		case err == nil:
		case errors.Is(err, cache.ErrEmpty):
			warn("camera has no frames yet; its view starts when they arrive", "camera", id)
		default:
			return err
		}
	}
	return nil
}

// isLoopbackHost reports whether an --http host keeps the server on this
// machine.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// boundHosts are the Host names a server bound to host answers besides
// loopback: the host itself, or for an unspecified address (0.0.0.0, ::,
// "") every address of this machine's interfaces.
func boundHosts(host string) []string {
	ip := net.ParseIP(host)
	if host != "" && (ip == nil || !ip.IsUnspecified()) {
		return []string{host}
	}
	var out []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out = append(out, n.IP.String())
		}
	}
	return out
}

// randomToken is 128 random bits in hex.
func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// pageURL is the URL to print for a listener address.
func pageURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/"
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}
