// Package chrysalis is the client SDK of Chrysalis Go: it reads a camera's
// frame cache (Redis Streams in the Chrysalis edge proxy's layout, or the
// in-process cache) and decodes it into images, BGR24 by default.
//
// Per camera it offers what the Chrysalis Python SDK did, properly in Go:
// Probe, the latest image (never one this handle already returned), past
// images over a window as an iterator, and a screenshot at a time.
//
//	cl, _ := chrysalis.Dial(ctx, "redis://127.0.0.1:6379/0")
//	defer cl.Close()
//	cam := cl.Camera("cam1", chrysalis.CameraOptions{})
//	defer cam.Close()
//	img, err := cam.Latest(ctx) // img == nil, err == nil: no new frame yet
//
// To feed an in-process cache from code (a file, a URL or the bundled demo
// camera), ingest.Start does it in one call. Packages source, operator,
// flow and sink build dataflow graphs on top; package media holds the
// vocabulary they share (ChImage is media.ChImage).
//
// Naming: New… makes an object with a lifecycle (it has Close, Stop or
// Run and state), Dial… connects; plain names (Throttle, KeyframesOnly)
// make stateless values. Option structs carry anything past three
// parameters; their zero values are documented defaults.
package chrysalis

import (
	"context"
	"log/slog"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
)

// Options configures a Client. The zero value is usable.
type Options struct {
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Client reads cameras from one frame cache. It is safe for concurrent use;
// the Camera handles it returns are not.
type Client struct {
	cache cache.Cache
	log   *slog.Logger
	owned bool
}

// New returns a Client over c. Close does not close c.
func New(c cache.Cache, o Options) *Client {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Client{cache: c, log: o.Logger}
}

// DialRedis connects to Redis (URL with password/ACL, rediss:// with a CA
// file or *tls.Config, or sentinel/cluster addresses) and checks the
// connection. Failures wrap ErrAuth, ErrTLS or ErrUnreachable. go-redis
// retries internally; DialRedis adds no retries of its own.
func DialRedis(ctx context.Context, co rediscache.ConnOptions, o Options) (*Client, error) {
	rc, err := rediscache.Dial(ctx, co, rediscache.Options{Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	c := New(rc, o)
	c.owned = true
	return c, nil
}

// Dial connects to the Redis frame cache at url (redis://[user:pass@]host:
// port/db, or rediss:// for TLS with the system's CAs) with default
// options: DialRedis for the common case. Use DialRedis for a CA file,
// sentinel or cluster addresses, or a logger.
func Dial(ctx context.Context, url string) (*Client, error) {
	return DialRedis(ctx, rediscache.ConnOptions{URL: url}, Options{})
}

// Cache is the underlying frame cache.
func (c *Client) Cache() cache.Cache { return c.cache }

// Cameras lists the cameras in the cache.
func (c *Client) Cameras(ctx context.Context) ([]string, error) { return c.cache.Cameras(ctx) }

// Close closes the cache if DialRedis opened it. Idempotent.
func (c *Client) Close() error {
	if c.owned {
		return c.cache.Close()
	}
	return nil
}
