package rediscache

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Kind is what a Redis URL names.
type Kind int

// Kinds of Redis URL (see ConnOptions).
const (
	// Single is one server: redis://host:port/db.
	Single Kind = iota
	// Cluster is a Redis Cluster: redis://host:port?addr=host2:port&….
	Cluster
	// Sentinel is a master found through sentinels:
	// redis+sentinel://s1:26379,s2:26379/MASTER/db.
	Sentinel
)

func (k Kind) String() string {
	switch k {
	case Cluster:
		return "cluster"
	case Sentinel:
		return "sentinel"
	}
	return "single"
}

// Sentinel URL schemes.
const (
	SentinelScheme    = "redis+sentinel"
	SentinelTLSScheme = "rediss+sentinel"
)

// DefaultSentinelPort is the port of a sentinel address given without one.
const DefaultSentinelPort = "26379"

// URL is a parsed Redis URL: exactly one of its option pointers is set,
// by Kind.
type URL struct {
	Kind     Kind
	Single   *redis.Options
	Cluster  *redis.ClusterOptions
	Sentinel *redis.FailoverOptions
}

// ErrBadURL: a Redis URL that does not parse (see ConnOptions for the
// forms).
var ErrBadURL = errors.New("redis: bad URL")

// DefaultPoolSize is the most connections a client keeps to one server
// when the URL does not say (go-redis's own default is 10 per CPU: 20
// here). Every live camera holds one connection while its follower (or a
// KeyframesOnly WaitLatest) blocks for the next packet, so with more live
// cameras than connections the others' reads queue for one: 32
// keyframes-only cameras on one client had a p99 age of 161 ms with
// go-redis's 20 and 106 ms with 128 (bench LiveCapacity/keyframes).
// Connections are opened only when needed.
const DefaultPoolSize = 256

const urlForms = "want redis://[user:pass@]host:port[/db] (rediss:// for TLS), a cluster as redis://host1:port?addr=host2:port&addr=host3:port, or sentinels as redis+sentinel://[user:pass@]host:26379,host:26379/MASTER[/db]"

// ParseURL reads the three forms of ConnOptions.URL:
//
//   - one server: redis://[user:pass@]host:port[/db] (redis.ParseURL);
//   - a cluster: any query parameter addr= makes it go-redis's cluster URL,
//     redis://[user:pass@]host:port?addr=host2:port&addr=host3:port
//     (redis.ParseClusterURL); one node is enough for the client to find
//     the others (repeat it as ?addr=host:port). A cluster has only
//     database 0, so a path other than /0 is an error;
//   - sentinels: redis+sentinel://[user:pass@]host:port[,host:port…]/MASTER[/db]
//     (rediss+sentinel:// for TLS to the sentinels and the master). The
//     comma-separated hosts are the sentinels (port 26379 when left out),
//     MASTER is the name they monitor, user:pass are the master's
//     credentials (as in the other forms); the sentinels' own, when they
//     have some, are the query parameters sentinel_username and
//     sentinel_password.
//
// Every client made from it has ContextTimeoutEnabled and go-redis's own
// retries of failed commands off (see noRetries); a cluster client still
// follows MOVED and ASK redirects. Its connection pool holds up to
// DefaultPoolSize connections (per node), made as needed, unless the URL
// sets pool_size (single server and cluster forms).
func ParseURL(s string) (*URL, error) {
	bad := func(err error) error {
		return fmt.Errorf("%w %q: %v (%s)", ErrBadURL, redactURL(s), err, urlForms)
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return nil, bad(errors.New("no scheme"))
	}
	switch strings.ToLower(scheme) {
	case SentinelScheme, SentinelTLSScheme:
		o, err := parseSentinel(strings.ToLower(scheme) == SentinelTLSScheme, rest)
		if err != nil {
			return nil, bad(err)
		}
		o.ContextTimeoutEnabled = true
		o.MaxRetries = noRetries
		o.PoolSize = DefaultPoolSize
		return &URL{Kind: Sentinel, Sentinel: o}, nil
	case "redis", "rediss":
	default:
		return nil, bad(fmt.Errorf("unknown scheme %q", scheme))
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, bad(err)
	}
	if u.Host == "" {
		return nil, bad(errors.New("no host"))
	}
	if !u.Query().Has("addr") {
		o, err := redis.ParseURL(s)
		if err != nil {
			return nil, bad(err)
		}
		o.ContextTimeoutEnabled = true
		o.MaxRetries = noRetries
		if !u.Query().Has("pool_size") {
			o.PoolSize = DefaultPoolSize
		}
		return &URL{Kind: Single, Single: o}, nil
	}
	switch strings.Trim(u.Path, "/") {
	case "", "0":
	default:
		return nil, bad(fmt.Errorf("a Redis Cluster has only database 0, not %q", strings.Trim(u.Path, "/")))
	}
	u.Path = ""
	o, err := redis.ParseClusterURL(u.String())
	if err != nil {
		return nil, bad(err)
	}
	o.ContextTimeoutEnabled = true
	o.MaxRetries = noRetries
	if !u.Query().Has("pool_size") {
		o.PoolSize = DefaultPoolSize
	}
	return &URL{Kind: Cluster, Cluster: o}, nil
}

// parseSentinel reads rest, what follows "redis+sentinel://".
func parseSentinel(tlsOn bool, rest string) (*redis.FailoverOptions, error) {
	o := &redis.FailoverOptions{}
	hostEnd := strings.IndexAny(rest, "/?")
	if hostEnd < 0 {
		return nil, errors.New("no master name: add /MASTER after the sentinel addresses")
	}
	hosts := rest[:hostEnd]
	// The userinfo runs to the last '@' of the host part.
	if at := strings.LastIndexByte(hosts, '@'); at >= 0 {
		ui, err := url.Parse("redis://" + hosts[:at] + "@h")
		if err != nil {
			return nil, fmt.Errorf("bad user:password (escape special characters): %v", err)
		}
		o.Username = ui.User.Username()
		o.Password, _ = ui.User.Password()
		hosts = hosts[at+1:]
	}
	for _, h := range strings.Split(hosts, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			return nil, errors.New("empty sentinel address")
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			host, port = strings.Trim(h, "[]"), DefaultSentinelPort
		}
		if host == "" {
			return nil, fmt.Errorf("sentinel address %q has no host", h)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return nil, fmt.Errorf("sentinel address %q: bad port", h)
		}
		o.SentinelAddrs = append(o.SentinelAddrs, net.JoinHostPort(host, port))
	}
	u, err := url.Parse("redis://h" + rest[hostEnd:])
	if err != nil {
		return nil, err
	}
	path := strings.Split(strings.Trim(u.Path, "/"), "/")
	switch {
	case path[0] == "":
		return nil, errors.New("no master name: add /MASTER after the sentinel addresses")
	case len(path) > 2:
		return nil, fmt.Errorf("bad path %q: want /MASTER or /MASTER/db", u.Path)
	}
	o.MasterName = path[0]
	if len(path) == 2 {
		if o.DB, err = strconv.Atoi(path[1]); err != nil || o.DB < 0 {
			return nil, fmt.Errorf("bad database number %q", path[1])
		}
	}
	for k, v := range u.Query() {
		switch k {
		case "sentinel_username":
			o.SentinelUsername = v[len(v)-1]
		case "sentinel_password":
			o.SentinelPassword = v[len(v)-1]
		default:
			return nil, fmt.Errorf("unknown query parameter %q (a sentinel URL takes sentinel_username and sentinel_password)", k)
		}
	}
	if tlsOn {
		host, _, _ := net.SplitHostPort(o.SentinelAddrs[0])
		o.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return o, nil
}

// TLSConfig is the URL's TLS configuration, nil without TLS.
func (u *URL) TLSConfig() *tls.Config {
	switch u.Kind {
	case Cluster:
		return u.Cluster.TLSConfig
	case Sentinel:
		return u.Sentinel.TLSConfig
	}
	return u.Single.TLSConfig
}

func (u *URL) setTLS(tc *tls.Config) {
	switch u.Kind {
	case Cluster:
		u.Cluster.TLSConfig = tc
	case Sentinel:
		u.Sentinel.TLSConfig = tc
	default:
		u.Single.TLSConfig = tc
	}
}

// client makes the go-redis client, without connecting.
func (u *URL) client() redis.UniversalClient {
	switch u.Kind {
	case Cluster:
		return redis.NewClusterClient(u.Cluster)
	case Sentinel:
		return redis.NewFailoverClient(u.Sentinel)
	}
	return redis.NewClient(u.Single)
}
