// Package rediscache is the frame cache on Redis Streams, in the Chrysalis
// edge proxy's layout (see DESIGN.md):
//
//	in_memory_queue_<cam>     stream: data=<VideoFrame protobuf>, is_keyframe="1"|"0"
//	memory_iframe_list_<cam>  stream: keyframe=1, added just before each keyframe
//	codec_video_info<cam>     string: <VideoCodec protobuf>
//	last_access_time_<cam>    hash:   last_query (ms), proxy_rtmp, store
//
// Caches written by the edge proxy can be read, and ours by it. The
// Chrysalis Cloud streaming node's layout (what the Python SDK read) is the
// second layout, chosen by Options.Layout or detected per camera: see
// Layout.
package rediscache

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/pb"
	"github.com/chryscloud/chrysalis-go/internal/redact"
)

// Key names of the edge proxy's layout.
func QueueKey(cam string) string  { return "in_memory_queue_" + cam }
func IndexKey(cam string) string  { return "memory_iframe_list_" + cam }
func CodecKey(cam string) string  { return "codec_video_info" + cam }
func AccessKey(cam string) string { return "last_access_time_" + cam }

const codecPrefix = "codec_video_info"

// Errors from connecting, testable with errors.Is.
var (
	// ErrAuth: the server refused the credentials (WRONGPASS, NOAUTH).
	ErrAuth = errors.New("redis: authentication failed")
	// ErrPermission: the user is authenticated but lacks the right to a
	// command or key (NOPERM). Readers need +@read on the camera's keys;
	// an ingest also needs +@write on them.
	ErrPermission = errors.New("redis: permission denied")
	// ErrTLS: the TLS handshake failed or the CA file is unusable.
	ErrTLS = errors.New("redis: TLS failure")
	// ErrNoTLS: a rediss:// URL names a server that speaks plain Redis.
	// It wraps ErrTLS.
	ErrNoTLS = fmt.Errorf("%w: the server does not speak TLS", ErrTLS)
	// ErrUnreachable: no connection to the server.
	ErrUnreachable = errors.New("redis: unreachable")
	// ErrClusterURL: a Redis Cluster node answered MOVED (or ASK) to a
	// client made for one server: the URL must name the cluster. It wraps
	// cache.ErrMisconfigured, so an ingest stops on it instead of
	// buffering packets that can never be written.
	ErrClusterURL error = clusterURLError{}
)

type clusterURLError struct{}

func (clusterURLError) Error() string {
	return "redis: the server is a Redis Cluster node: name the cluster as redis://host1:port?addr=host2:port&addr=host3:port"
}

func (clusterURLError) Is(target error) bool { return target == cache.ErrMisconfigured }

// Options configures a Cache. The zero value is usable.
type Options struct {
	// Retention bounds each camera's streams on Append. Default: unbounded.
	Retention cache.Retention
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// TouchEvery rate-limits the last_access_time_<cam> last_query update
	// that reads make (the edge proxy uses it to know a camera is watched).
	// Default 1s; negative disables it.
	TouchEvery time.Duration
	// Layout is the key layout: LayoutEdge, LayoutCloud, or LayoutDetect
	// (the default, "") to pick per camera the layout whose key exists.
	Layout Layout
	// CloudStream is the cloud layout's video stream key; a "{camera}" in
	// it is replaced by the camera id, so several cameras can share one
	// Redis. Without it, every camera id reads the one stream (one camera
	// per Redis, as the Python SDK had). Default "input_rtmp_stream".
	CloudStream string
	// CloudAudioStream is the cloud layout's audio stream key, with the
	// same "{camera}" rule. Default "input_rtmp_audio_stream".
	CloudAudioStream string
}

// Cache is the Redis frame cache. Safe for concurrent use.
type Cache struct {
	rdb   redis.UniversalClient
	opts  Options
	owned bool

	mu      sync.Mutex
	touched map[string]time.Time
	lastMS  map[string]uint64
	firstMS map[string]uint64 // queue's first ms after the last append (MAXLEN)
	closed  bool

	lay layouts
}

var _ cache.Cache = (*Cache)(nil)

// New wraps an existing client. Close does not close rdb.
func New(rdb redis.UniversalClient, o Options) *Cache {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.TouchEvery == 0 {
		o.TouchEvery = time.Second
	}
	c := &Cache{rdb: rdb, opts: o, touched: map[string]time.Time{}, lastMS: map[string]uint64{}, firstMS: map[string]uint64{}}
	c.lay.init(&c.opts)
	return c
}

// ConnOptions says how to reach Redis. URL names one server, a cluster or
// a sentinel-watched master (rediss instead of redis means TLS):
//
//	redis://[user:pass@]host:port[/db]                     one server (redis.ParseURL)
//	redis://[user:pass@]host:port?addr=host2:port&addr=…   a Redis Cluster: any of its nodes,
//	                                                        the others as addr= (redis.ParseClusterURL)
//	redis+sentinel://[user:pass@]s1:26379,s2:26379,…/MASTER[/db][?sentinel_username=U&sentinel_password=P]
//	                                                        the master named MASTER, found through
//	                                                        these sentinels (user:pass is the master's)
//
// See ParseURL.
type ConnOptions struct {
	URL string
	// TLSCAFile is a PEM CA certificate to verify the server with (rediss).
	TLSCAFile string
	// TLSConfig overrides the TLS configuration entirely when set.
	TLSConfig *tls.Config
	// Addrs, MasterName: when set instead of URL, a sentinel (MasterName) or
	// cluster (several Addrs) client is made through redis.UniversalClient.
	Addrs      []string
	MasterName string
	Username   string
	Password   string
	DB         int
	// Layout and StreamKey say what the server holds: they fill
	// Options.Layout and Options.CloudStream when those are empty (so
	// callers that pass only ConnOptions, like chrysalis.DialRedis, can
	// choose them). Default: detect; "input_rtmp_stream".
	Layout    Layout
	StreamKey string
}

// Dial connects and checks the connection with PING, classifying failures
// as ErrAuth, ErrTLS or ErrUnreachable. A user may lack the right to PING
// (an ACL user with +@read only): NOPERM is a reply from a server that
// accepted the credentials, so it counts as connected. go-redis retries
// internally; Dial does not add retries of its own.
func Dial(ctx context.Context, co ConnOptions, o Options) (*Cache, error) {
	if o.Layout == LayoutDetect {
		o.Layout = co.Layout
	}
	if o.CloudStream == "" {
		o.CloudStream = co.StreamKey
	}
	l, err := ParseLayout(string(o.Layout))
	if err != nil {
		return nil, err
	}
	o.Layout = l
	rdb, err := NewClient(co)
	if err != nil {
		return nil, err
	}
	if err := rdb.Ping(ctx).Err(); err != nil && !redis.IsPermissionError(err) {
		_ = rdb.Close()
		err = classify(ctx, err)
		if addr := tlsAddr(rdb); addr != "" && !errors.Is(err, ErrTLS) && !errors.Is(err, ErrAuth) && plainRedis(addr) {
			// A plaintext server never answers a TLS ClientHello: the
			// dial only times out. Say what is wrong; never fall back.
			return nil, fmt.Errorf("%w: %s answers plain Redis: use redis:// or the server's TLS port", ErrNoTLS, addr)
		}
		return nil, err
	}
	c := New(rdb, o)
	c.owned = true
	return c, nil
}

// tlsAddr is the address of a single-server client that uses TLS, or "".
func tlsAddr(rdb redis.UniversalClient) string {
	if c, ok := rdb.(*redis.Client); ok && c.Options().TLSConfig != nil {
		return c.Options().Addr
	}
	return ""
}

// plainRedis reports whether addr answers a plain-text PING like a Redis
// server (+PONG, or an error reply such as -NOAUTH) within a second.
func plainRedis(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	b := make([]byte, 1)
	_, err = io.ReadFull(conn, b)
	return err == nil && (b[0] == '+' || b[0] == '-')
}

// NewClient builds the go-redis client for co without connecting. Its
// WRONGTYPE errors name the key and the kind of value expected
// (*WrongTypeError, ErrWrongType).
func NewClient(co ConnOptions) (redis.UniversalClient, error) {
	tc := co.TLSConfig
	if tc == nil && co.TLSCAFile != "" {
		pemBytes, err := os.ReadFile(co.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: CA file: %v", ErrTLS, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("%w: CA file %s holds no PEM certificate", ErrTLS, co.TLSCAFile)
		}
		tc = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if co.URL != "" {
		u, err := ParseURL(co.URL)
		if err != nil {
			return nil, err
		}
		if tc != nil {
			if u.TLSConfig() == nil {
				return nil, fmt.Errorf("%w: a CA file needs a rediss:// URL", ErrTLS)
			}
			tc = tc.Clone()
			if tc.ServerName == "" {
				tc.ServerName = u.TLSConfig().ServerName
			}
			u.setTLS(tc)
		}
		rdb := u.client()
		rdb.AddHook(wrongTypeHook{})
		return rdb, nil
	}
	if len(co.Addrs) == 0 {
		return nil, errors.New("redis: no URL or address given")
	}
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: co.Addrs, MasterName: co.MasterName, Username: co.Username, Password: co.Password,
		DB: co.DB, TLSConfig: tc, ContextTimeoutEnabled: true, MaxRetries: noRetries,
	})
	rdb.AddHook(wrongTypeHook{})
	return rdb, nil
}

// noRetries turns go-redis's own retries off (-1). A retried XADD whose
// first attempt reached Redis but lost its reply (a connection cut, a
// server killed after the write) would cache the packet twice: the ingest
// retries by itself instead, after checking whether the write landed
// (ingest's alreadyWritten), and readers retry in their own loops (the
// live follower) or report the error (Past). A client passed to New keeps
// its own setting.
const noRetries = -1

// sentinelsUnreachable opens go-redis's error when no sentinel answers.
const sentinelsUnreachable = "redis: all sentinels specified in configuration are unreachable"

func redactURL(u string) string { return redact.URL(u) }

// classify is Classify, except that a failure once ctx has ended is ctx's
// error. go-redis puts ctx's deadline on the socket itself, so a read or
// write can fail with a net timeout before ctx's own timer has fired and
// ctx.Err() is still nil: a deadline that has passed counts as ended.
func classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return Classify(err)
}

// Classify maps a go-redis error to ErrAuth, ErrPermission, ErrTLS or
// ErrUnreachable (wrapped, keeping the original text), or returns it
// unchanged. It uses go-redis's and the standard library's typed errors
// only, never the reply text.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	var re tls.RecordHeaderError
	var ae tls.AlertError
	var ce *tls.CertificateVerificationError
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	var ie x509.CertificateInvalidError
	if _, moved := redis.IsMovedError(err); moved {
		return fmt.Errorf("%w (%v)", ErrClusterURL, err)
	}
	if _, ask := redis.IsAskError(err); ask {
		return fmt.Errorf("%w (%v)", ErrClusterURL, err)
	}
	switch {
	case redis.IsAuthError(err):
		return fmt.Errorf("%w: %v", ErrAuth, err)
	case redis.IsPermissionError(err):
		return &refusedError{ErrPermission, err}
	case errors.As(err, &re), errors.As(err, &ae), errors.As(err, &ce), errors.As(err, &ue), errors.As(err, &he), errors.As(err, &ie):
		return fmt.Errorf("%w: %v", ErrTLS, err)
	case errors.As(err, &ne), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, redis.ErrPoolTimeout):
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	case strings.HasPrefix(err.Error(), sentinelsUnreachable):
		// go-redis's failover client reports it as a plain error, with
		// the sentinels' dial errors flattened into its text.
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	return err
}

// refusedError is a permanent refusal (cache.ErrRefused) of kind sentinel.
type refusedError struct{ sentinel, err error }

func (e *refusedError) Error() string   { return e.sentinel.Error() + ": " + e.err.Error() }
func (e *refusedError) Unwrap() []error { return []error{e.sentinel, cache.ErrRefused, e.err} }

// Client is the underlying go-redis client.
func (c *Cache) Client() redis.UniversalClient { return c.rdb }

// Close implements cache.Cache; it closes the client only if Dial made it.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.owned {
		return c.rdb.Close()
	}
	return nil
}

// isIDTooSmall reports XADD's refusal of an id at or below the stream's
// top. Redis gives it no error code of its own ("ERR The ID specified in
// XADD is equal or smaller than the target stream top item") and go-redis
// no helper, so this is the one match on reply text, on a typed Redis
// error only.
func isIDTooSmall(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.Contains(re.Error(), "equal or smaller than the target stream top item")
}

// Append implements cache.Cache. The index entry and the packet are sent in
// one pipeline, index first, both at the packet's millisecond ("<ms>-*").
// If the streams already hold a later id (the clock stepped back, or
// another writer), it falls back to server-assigned ids ("*").
func (c *Cache) Append(ctx context.Context, cam string, p *cache.Packet) (cache.ID, error) {
	if cl, err := c.cloud(ctx, cam); err != nil {
		return cache.ID{}, err
	} else if cl != nil {
		return cl.Append(ctx, p)
	}
	ms := uint64(p.Timestamp)
	if p.Timestamp <= 0 {
		ms = uint64(time.Now().UnixMilli())
	}
	c.mu.Lock()
	if l := c.lastMS[cam]; ms < l {
		ms = l
	}
	c.mu.Unlock()
	data, err := proto.Marshal(toPB(cam, p))
	if err != nil {
		return cache.ID{}, err
	}
	id, err := c.xadd(ctx, cam, p.Keyframe, data, strconv.FormatUint(ms, 10)+"-*", ms)
	if isIDTooSmall(err) {
		id, err = c.xadd(ctx, cam, p.Keyframe, data, "*", ms)
	}
	if err != nil {
		return cache.ID{}, classify(ctx, err)
	}
	c.mu.Lock()
	c.lastMS[cam] = id.MS
	c.mu.Unlock()
	return id, nil
}

func (c *Cache) trimArgs(a *redis.XAddArgs, ms uint64) {
	r := c.opts.Retention
	switch {
	case r.MaxAge > 0: // with both set, MAXLEN is applied by a separate XTRIM
		if age := uint64(r.MaxAge.Milliseconds()); ms > age {
			a.MinID = strconv.FormatUint(ms-age, 10)
		}
	case r.MaxLen > 0:
		a.MaxLen = r.MaxLen
	}
}

func (c *Cache) xadd(ctx context.Context, cam string, key bool, data []byte, id string, ms uint64) (cache.ID, error) {
	pipe := c.rdb.Pipeline()
	if key {
		ia := &redis.XAddArgs{Stream: IndexKey(cam), ID: id, Values: []any{"keyframe", "1"}}
		if r := c.opts.Retention; r.MaxAge > 0 {
			if age := uint64(r.MaxAge.Milliseconds()); ms > age {
				ia.MinID = strconv.FormatUint(ms-age, 10)
			}
		}
		pipe.XAdd(ctx, ia)
	}
	qa := &redis.XAddArgs{Stream: QueueKey(cam), ID: id, Values: []any{"data", data, "is_keyframe", boolStr(key)}}
	c.trimArgs(qa, ms)
	add := pipe.XAdd(ctx, qa)
	var first *redis.XMessageSliceCmd
	if r := c.opts.Retention; r.MaxLen > 0 {
		if r.MaxAge > 0 {
			pipe.XTrimMaxLen(ctx, QueueKey(cam), r.MaxLen)
		}
		// MAXLEN trims the queue by count; keep the index to the same span.
		// The queue's first id comes back in this round trip and trims the
		// index in the next one, so the index is at most one append behind
		// and never costs an extra round trip.
		c.mu.Lock()
		f := c.firstMS[cam]
		c.mu.Unlock()
		if f > 0 {
			pipe.XTrimMinID(ctx, IndexKey(cam), strconv.FormatUint(f, 10))
		}
		first = pipe.XRangeN(ctx, QueueKey(cam), "-", "+", 1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return cache.ID{}, err
	}
	if first != nil {
		if msgs, err := first.Result(); err == nil && len(msgs) == 1 {
			if f, err := cache.ParseID(msgs[0].ID); err == nil {
				c.mu.Lock()
				c.firstMS[cam] = f.MS
				c.mu.Unlock()
			}
		}
	}
	return cache.ParseID(add.Val())
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func toPB(cam string, p *cache.Packet) *pb.VideoFrame {
	ft := p.FrameType
	if ft == "" {
		ft = "P"
		if p.Keyframe {
			ft = "I"
		}
	}
	return &pb.VideoFrame{
		Width: int64(p.Width), Height: int64(p.Height), Data: p.Data, Timestamp: p.Timestamp,
		IsKeyframe: p.Keyframe, Pts: p.PTS, Dts: p.DTS, FrameType: ft, IsCorrupt: p.Corrupt,
		TimeBase: p.TimeBase, DeviceId: cam, Packet: p.Number, Keyframe: p.KeyframeNumber,
		Extradata: p.Extradata, CodecName: p.CodecName, PixFmt: p.PixFmt,
	}
}

// SetCodec implements cache.Cache (a no-op for a camera in the cloud
// layout, which has no codec key).
func (c *Cache) SetCodec(ctx context.Context, cam string, cd cache.Codec) error {
	if cl, err := c.cloud(ctx, cam); err != nil {
		return err
	} else if cl != nil {
		return nil // the cloud layout keeps the parameters in-band only
	}
	b, err := proto.Marshal(&pb.VideoCodec{
		Name: cd.Name, Width: int32(cd.Width), Height: int32(cd.Height), PixFmt: cd.PixFmt,
		Extradata: cd.Extradata, ExtradataSize: int32(len(cd.Extradata)), LongName: cd.LongName,
	})
	if err != nil {
		return err
	}
	pipe := c.rdb.Pipeline()
	pipe.Set(ctx, CodecKey(cam), b, 0)
	pipe.HSetNX(ctx, AccessKey(cam), "store", "1")
	pipe.HSetNX(ctx, AccessKey(cam), "proxy_rtmp", "0")
	pipe.HSetNX(ctx, AccessKey(cam), "last_query", strconv.FormatInt(time.Now().UnixMilli(), 10))
	_, err = pipe.Exec(ctx)
	return classify(ctx, err)
}

// Codec implements cache.Cache.
func (c *Cache) Codec(ctx context.Context, cam string) (cache.Codec, error) {
	if cl, err := c.cloud(ctx, cam); err != nil {
		return cache.Codec{}, err
	} else if cl != nil {
		return cl.Codec(ctx)
	}
	s, err := c.rdb.Get(ctx, CodecKey(cam)).Result()
	if errors.Is(err, redis.Nil) {
		return cache.Codec{}, &cache.CameraError{Camera: cam, Err: cache.ErrUnknownCamera}
	}
	if err != nil {
		return cache.Codec{}, classify(ctx, err)
	}
	var v pb.VideoCodec
	if err := proto.Unmarshal(strBytes(s), &v); err != nil {
		return cache.Codec{}, fmt.Errorf("camera %q: corrupt codec info: %w", cam, err)
	}
	return cache.Codec{Name: v.Name, LongName: v.LongName, Width: int(v.Width), Height: int(v.Height),
		PixFmt: v.PixFmt, Extradata: v.Extradata}, nil
}

func (c *Cache) touch(ctx context.Context, cam string) {
	if c.opts.TouchEvery < 0 {
		return
	}
	now := time.Now()
	c.mu.Lock()
	if now.Sub(c.touched[cam]) < c.opts.TouchEvery {
		c.mu.Unlock()
		return
	}
	c.touched[cam] = now
	c.mu.Unlock()
	// Best effort: a failed touch must not fail the read.
	_ = c.rdb.HSet(ctx, AccessKey(cam), "last_query", strconv.FormatInt(now.UnixMilli(), 10)).Err()
}

// strBytes views s as bytes without copying; the result must not be written.
func strBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func (c *Cache) decode(cam string, msgs []redis.XMessage) ([]cache.Packet, error) {
	out := make([]cache.Packet, 0, len(msgs))
	for _, m := range msgs {
		p, err := decodeEntry(m)
		if err != nil {
			return out, fmt.Errorf("camera %q: entry %s: %w", cam, m.ID, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func decodeEntry(m redis.XMessage) (cache.Packet, error) {
	id, err := cache.ParseID(m.ID)
	if err != nil {
		return cache.Packet{}, err
	}
	raw, _ := m.Values["data"].(string)
	p, err := decodeVideoFrame(strBytes(raw))
	if err != nil {
		return cache.Packet{}, err
	}
	p.ID = id
	if k, ok := m.Values["is_keyframe"].(string); ok {
		p.Keyframe = k == "1" || k == "True" || k == "true"
	}
	return p, nil
}

func (c *Cache) known(ctx context.Context, cam string) error {
	n, err := c.existsAny(ctx, QueueKey(cam), CodecKey(cam))
	if err != nil {
		return classify(ctx, err)
	}
	if n == 0 {
		return &cache.CameraError{Camera: cam, Err: cache.ErrUnknownCamera}
	}
	return nil
}

// existsAny counts how many of keys exist with one EXISTS per key in one
// pipeline: a multi-key EXISTS would fail with CROSSSLOT on a cluster,
// where a camera's keys sit in different slots.
func (c *Cache) existsAny(ctx context.Context, keys ...string) (int64, error) {
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Exists(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	var n int64
	for _, cmd := range cmds {
		n += cmd.Val()
	}
	return n, nil
}

func endStr(id cache.ID) string {
	if id == cache.MaxID {
		return "+"
	}
	return id.String()
}

func startStr(id cache.ID) string {
	if id.IsZero() {
		return "-"
	}
	return id.String()
}

// Range implements cache.Cache.
func (c *Cache) Range(ctx context.Context, cam string, start, end cache.ID, count int64) ([]cache.Packet, error) {
	if cl, err := c.cloud(ctx, cam); err != nil {
		return nil, err
	} else if cl != nil {
		return cl.Range(ctx, start, end, count)
	}
	c.touch(ctx, cam)
	var msgs []redis.XMessage
	var err error
	if count > 0 {
		msgs, err = c.rdb.XRangeN(ctx, QueueKey(cam), startStr(start), endStr(end), count).Result()
	} else {
		msgs, err = c.rdb.XRange(ctx, QueueKey(cam), startStr(start), endStr(end)).Result()
	}
	if err != nil {
		return nil, classify(ctx, err)
	}
	if len(msgs) == 0 {
		if err := c.known(ctx, cam); err != nil {
			return nil, err
		}
	}
	return c.decode(cam, msgs)
}

// RevRange implements cache.Cache.
func (c *Cache) RevRange(ctx context.Context, cam string, end, start cache.ID, count int64) ([]cache.Packet, error) {
	if cl, err := c.cloud(ctx, cam); err != nil {
		return nil, err
	} else if cl != nil {
		return cl.RevRange(ctx, end, start, count)
	}
	c.touch(ctx, cam)
	var msgs []redis.XMessage
	var err error
	if count > 0 {
		msgs, err = c.rdb.XRevRangeN(ctx, QueueKey(cam), endStr(end), startStr(start), count).Result()
	} else {
		msgs, err = c.rdb.XRevRange(ctx, QueueKey(cam), endStr(end), startStr(start)).Result()
	}
	if err != nil {
		return nil, classify(ctx, err)
	}
	if len(msgs) == 0 {
		if err := c.known(ctx, cam); err != nil {
			return nil, err
		}
	}
	return c.decode(cam, msgs)
}

// The keyframe index is a stream of its own, numbered apart from the queue:
// an index entry's id says only in which millisecond its keyframe's packet
// was added (at or after it). Entries are resolved by order: the k index
// entries of millisecond M name the first k keyframe packets at or after
// <M>-0 that no earlier entry named. This is exact for every writer that
// adds an index entry in the same millisecond as its packet (this package
// does, in one pipeline), however many packets share the millisecond.

// scanKeyframes returns up to k keyframe packets with from <= id <= to,
// oldest first, reading the queue in pages.
func (c *Cache) scanKeyframes(ctx context.Context, cam string, from, to cache.ID, k int) ([]cache.Packet, error) {
	const page = 16
	var out []cache.Packet
	for len(out) < k {
		msgs, err := c.rdb.XRangeN(ctx, QueueKey(cam), startStr(from), endStr(to), page).Result()
		if err != nil {
			return out, classify(ctx, err)
		}
		for _, m := range msgs {
			if kf, _ := m.Values["is_keyframe"].(string); kf != "1" {
				continue
			}
			p, err := decodeEntry(m)
			if err != nil {
				return out, err
			}
			if out = append(out, p); len(out) == k {
				return out, nil
			}
		}
		if len(msgs) < page {
			break
		}
		last, err := cache.ParseID(msgs[len(msgs)-1].ID)
		if err != nil {
			return out, err
		}
		from = last.Next()
	}
	return out, nil
}

// msGroups splits index ids (sorted) into runs sharing a millisecond.
func msGroups(idx []redis.XMessage) (ms []uint64, n []int, err error) {
	for _, m := range idx {
		id, err := cache.ParseID(m.ID)
		if err != nil {
			return nil, nil, err
		}
		if len(ms) > 0 && ms[len(ms)-1] == id.MS {
			n[len(n)-1]++
			continue
		}
		ms, n = append(ms, id.MS), append(n, 1)
	}
	return ms, n, nil
}

// Keyframes implements cache.Cache.
func (c *Cache) Keyframes(ctx context.Context, cam string, start, end cache.ID, count int64) ([]cache.Packet, error) {
	if cl, err := c.cloud(ctx, cam); err != nil {
		return nil, err
	} else if cl != nil {
		return cl.Keyframes(ctx, start, end, count)
	}
	c.touch(ctx, cam)
	// Index entries sort at or before their packet. The walk starts one
	// index millisecond before start's, so that a keyframe whose packet
	// landed a millisecond after its index entry is named by its own entry
	// and not taken for the next one's; it ends with end's millisecond.
	first := cache.ID{MS: start.MS}
	if prev, err := c.rdb.XRevRangeN(ctx, IndexKey(cam), endStr(cache.ID{MS: start.MS}), "-", 1).Result(); err != nil {
		return nil, classify(ctx, err)
	} else if len(prev) == 1 && start.MS > 0 {
		if id, err := cache.ParseID(prev[0].ID); err == nil && id.MS < start.MS {
			first = cache.ID{MS: id.MS}
		}
	}
	idx, err := c.rdb.XRange(ctx, IndexKey(cam), first.String(), endStr(cache.ID{MS: end.MS, Seq: ^uint64(0)})).Result()
	if err != nil {
		return nil, classify(ctx, err)
	}
	ms, n, err := msGroups(idx)
	if err != nil {
		return nil, err
	}
	var out []cache.Packet
	next := first
	for g := range ms {
		from := cache.ID{MS: ms[g]}
		if from.Compare(next) < 0 {
			from = next // never name a packet twice
		}
		kfs, err := c.scanKeyframes(ctx, cam, from, end, n[g])
		if err != nil {
			return out, err
		}
		for _, p := range kfs {
			next = p.ID.Next()
			if p.ID.Compare(start) < 0 {
				continue // the anchor's, before the window
			}
			out = append(out, p)
			if count > 0 && int64(len(out)) >= count {
				return out, nil
			}
		}
	}
	if len(out) == 0 {
		if err := c.known(ctx, cam); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// keyframeBefore scans the queue backwards from ARGV[1] (inclusive) inside
// Redis, in pages of 32, for the first entry whose is_keyframe is set, and
// returns that entry; nil when none is within ARGV[2] entries. Only the
// answer crosses the network, and the scan does not depend on how the
// index stream's ids relate to the queue's. The previous id is computed by
// hand (exclusive ranges need Redis 6.2).
var keyframeBefore = redis.NewScript(`
local last = ARGV[1]
local limit = tonumber(ARGV[2])
local scanned = 0
while scanned < limit do
  local r = redis.call('XREVRANGE', KEYS[1], last, '-', 'COUNT', 32)
  for _, e in ipairs(r) do
    local f = e[2]
    for j = 1, #f, 2 do
      if f[j] == 'is_keyframe' then
        local v = f[j + 1]
        if v == '1' or v == 'True' or v == 'true' then return e end
      end
    end
  end
  scanned = scanned + #r
  if #r < 32 then return false end
  local ms, seq = string.match(r[#r][1], '^(%d+)-(%d+)$')
  if seq ~= '0' then
    last = ms .. '-' .. string.format('%.0f', tonumber(seq) - 1)
  elseif ms == '0' then
    return false
  else
    last = string.format('%.0f', tonumber(ms) - 1) .. '-18446744073709551615'
  end
end
return {'limit'}
`)

// keyframeScanLimit bounds keyframeBefore's scan: 4096 packets, 2.7 minutes
// of a 25 fps camera, far beyond any camera's keyframe interval.
const keyframeScanLimit = 4096

// KeyframeAtOrBefore implements cache.Cache: the newest keyframe packet
// with id <= at, however many packets share at's millisecond. It scans the
// queue inside Redis (a Lua script); where scripts are not allowed (an ACL
// without @scripting) or the scan hits its limit, it resolves the keyframe
// index instead, which is exact for writers that add an index entry in the
// same millisecond as its packet.
func (c *Cache) KeyframeAtOrBefore(ctx context.Context, cam string, at cache.ID) (cache.Packet, error) {
	if cl, err := c.cloud(ctx, cam); err != nil {
		return cache.Packet{}, err
	} else if cl != nil {
		return cl.KeyframeAtOrBefore(ctx, at)
	}
	c.touch(ctx, cam)
	res, err := keyframeBefore.Run(ctx, c.rdb, []string{QueueKey(cam)}, endStr(at), keyframeScanLimit).Slice()
	switch {
	case errors.Is(err, redis.Nil):
		if err := c.known(ctx, cam); err != nil {
			return cache.Packet{}, err
		}
		return cache.Packet{}, &cache.CameraError{Camera: cam, Err: cache.ErrNotFound}
	case err == nil && len(res) == 2:
		m, err := scriptEntry(res)
		if err != nil {
			return cache.Packet{}, err
		}
		return decodeEntry(m)
	case err != nil && ctx.Err() != nil:
		return cache.Packet{}, ctx.Err()
	case err != nil && !isScriptRefused(err):
		return cache.Packet{}, classify(ctx, err)
	}
	return c.keyframeAtOrBeforeIndex(ctx, cam, at)
}

// isScriptRefused reports errors after which the index is used instead:
// scripting not permitted, or not available.
func isScriptRefused(err error) bool {
	return redis.IsPermissionError(err) || redis.HasErrorPrefix(err, "unknown command") || redis.HasErrorPrefix(err, "NOSCRIPT")
}

// scriptEntry turns a script's {id, {field, value, ...}} into an XMessage.
func scriptEntry(res []any) (redis.XMessage, error) {
	id, ok := res[0].(string)
	fields, ok2 := res[1].([]any)
	if !ok || !ok2 || len(fields)%2 != 0 {
		return redis.XMessage{}, fmt.Errorf("rediscache: unexpected script reply %T %T", res[0], res[1])
	}
	m := redis.XMessage{ID: id, Values: make(map[string]any, len(fields)/2)}
	for i := 0; i < len(fields); i += 2 {
		k, _ := fields[i].(string)
		m.Values[k] = fields[i+1]
	}
	return m, nil
}

// keyframeAtOrBeforeIndex resolves the keyframe index (see scanKeyframes).
func (c *Cache) keyframeAtOrBeforeIndex(ctx context.Context, cam string, at cache.ID) (cache.Packet, error) {
	end := cache.ID{MS: at.MS, Seq: ^uint64(0)}
	for range 8 {
		idx, err := c.rdb.XRevRangeN(ctx, IndexKey(cam), endStr(end), "-", 8).Result()
		if err != nil {
			return cache.Packet{}, classify(ctx, err)
		}
		slices.Reverse(idx)
		ms, n, err := msGroups(idx)
		if err != nil {
			return cache.Packet{}, err
		}
		// Newest group first; a group whose packets all lie after at
		// sends us to the one before it. A full page's oldest group may be
		// cut short: it is read whole in the next round.
		if len(ms) == 0 {
			break
		}
		oldest, more := 0, len(idx) == 8
		if more && len(ms) > 1 {
			oldest = 1
		}
		for g := len(ms) - 1; g >= oldest; g-- {
			kfs, err := c.scanKeyframes(ctx, cam, cache.ID{MS: ms[g]}, at, n[g])
			if err != nil {
				return cache.Packet{}, err
			}
			if len(kfs) > 0 {
				return kfs[len(kfs)-1], nil
			}
		}
		if !more || (oldest == 0 && ms[0] == 0) {
			break
		}
		if oldest == 1 {
			end = cache.ID{MS: ms[0], Seq: ^uint64(0)}
		} else {
			end = cache.ID{MS: ms[0] - 1, Seq: ^uint64(0)}
		}
	}
	if err := c.known(ctx, cam); err != nil {
		return cache.Packet{}, err
	}
	return cache.Packet{}, &cache.CameraError{Camera: cam, Err: cache.ErrNotFound}
}

// ReadAfter implements cache.Cache with XREAD [BLOCK].
func (c *Cache) ReadAfter(ctx context.Context, cam string, after cache.ID, count int64, block time.Duration) ([]cache.Packet, error) {
	if cl, err := c.cloud(ctx, cam); err != nil {
		return nil, err
	} else if cl != nil {
		return cl.ReadAfter(ctx, after, count, block)
	}
	c.touch(ctx, cam)
	a := &redis.XReadArgs{Streams: []string{QueueKey(cam), after.String()}, Count: count, Block: -1}
	if block > 0 {
		a.Block = max(block, time.Millisecond)
	}
	res, err := c.rdb.XRead(ctx, a).Result()
	msgs, err := xreadMessages(ctx, res, err, block, func() error { return c.known(ctx, cam) })
	if err != nil || len(msgs) == 0 {
		return nil, err
	}
	return c.decode(cam, msgs)
}

// xreadMessages turns an XREAD reply into the stream's messages, for both
// layouts: redis.Nil is "nothing arrived" (after checking, for a read that
// did not block, that the camera exists), a failure after ctx ended is
// ctx's error, others are classified.
func xreadMessages(ctx context.Context, res []redis.XStream, err error, block time.Duration, known func() error) ([]redis.XMessage, error) {
	if errors.Is(err, redis.Nil) {
		if block <= 0 {
			return nil, known()
		}
		return nil, nil
	}
	if err != nil {
		return nil, classify(ctx, err)
	}
	if len(res) == 0 {
		return nil, nil
	}
	return res[0].Messages, nil
}

// Stats implements cache.Cache (one round trip).
func (c *Cache) Stats(ctx context.Context, cam string) (cache.Stats, error) {
	if cl, err := c.cloud(ctx, cam); err != nil {
		return cache.Stats{}, err
	} else if cl != nil {
		return cl.Stats(ctx)
	}
	pipe := c.rdb.Pipeline()
	n := pipe.XLen(ctx, QueueKey(cam))
	k := pipe.XLen(ctx, IndexKey(cam))
	first := pipe.XRangeN(ctx, QueueKey(cam), "-", "+", 1)
	last := pipe.XRevRangeN(ctx, QueueKey(cam), "+", "-", 1)
	codec := pipe.Exists(ctx, CodecKey(cam))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return cache.Stats{}, classify(ctx, err)
	}
	if n.Val() == 0 || len(first.Val()) == 0 || len(last.Val()) == 0 {
		if codec.Val() == 0 {
			return cache.Stats{}, &cache.CameraError{Camera: cam, Err: cache.ErrUnknownCamera}
		}
		return cache.Stats{}, &cache.CameraError{Camera: cam, Err: cache.ErrEmpty}
	}
	f, err := cache.ParseID(first.Val()[0].ID)
	if err != nil {
		return cache.Stats{}, err
	}
	l, err := cache.ParseID(last.Val()[0].ID)
	if err != nil {
		return cache.Stats{}, err
	}
	return cache.Stats{First: f, Last: l, Frames: n.Val(), Keyframes: k.Val()}, nil
}

// Cameras implements cache.Cache by scanning codec_video_info* keys (on
// every master of a cluster), and the cloud layout's stream keys (see
// Options.CloudStream) unless the layout is LayoutEdge.
func (c *Cache) Cameras(ctx context.Context) ([]string, error) {
	var cloud []string
	switch c.lay.layout {
	case LayoutCloud:
		return c.cloudCameras(ctx)
	case LayoutDetect:
		var err error
		if cloud, err = c.cloudCameras(ctx); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	keys, err := c.scanKeys(ctx, codecPrefix+"*")
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		seen[strings.TrimPrefix(k, codecPrefix)] = true
	}
	for _, k := range cloud {
		seen[k] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slicesSort(out)
	return out, nil
}

// scanKeys returns the keys matching pattern, scanning every master of a
// cluster (a plain SCAN on a cluster client reaches one node only).
func (c *Cache) scanKeys(ctx context.Context, pattern string) ([]string, error) {
	var out []string
	var mu sync.Mutex
	scan := func(ctx context.Context, cl *redis.Client) error {
		it := cl.Scan(ctx, 0, pattern, 256).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			out = append(out, it.Val())
			mu.Unlock()
		}
		return it.Err()
	}
	var err error
	switch r := c.rdb.(type) {
	case *redis.ClusterClient:
		err = r.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, r)
	default:
		it := c.rdb.Scan(ctx, 0, pattern, 256).Iterator()
		for it.Next(ctx) {
			out = append(out, it.Val())
		}
		err = it.Err()
	}
	if err != nil {
		return nil, classify(ctx, err)
	}
	return out, nil
}
