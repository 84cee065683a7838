package main

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/ingest"
	"github.com/chryscloud/chrysalis-go/lease"
	"github.com/chryscloud/chrysalis-go/metrics"
)

// newIngestCmd is `chrysalis ingest`: the streaming node.
func newIngestCmd() *cobra.Command {
	var (
		rf                       redisFlags
		cams, inputs, opts       []string
		listen, realtime, loop   bool
		verbose                  bool
		buffer, maxAge, readTO   time.Duration
		maxLen                   int64
		rtspTransport, inputForm string
		metricsAddr              string
		statusEvery              time.Duration
		leaseTTL                 time.Duration
		camerasFile, camerasFrom string
		camerasKey, leasePrefix  string
	)
	c := &cobra.Command{
		Use:   "ingest --redis-url URL --camera ID --input URL|FILE [--camera ID --input URL|FILE ...]",
		Short: "Stream cameras (RTMP push or pull, RTSP, HTTP, files) into the Redis frame cache",
		Long: `ingest reads each camera's video with FFmpeg and writes the encoded packets,
without decoding them, into Redis Streams in the Chrysalis edge proxy's layout
(in_memory_queue_<cam>, memory_iframe_list_<cam>, codec_video_info<cam>),
trimmed to --max-age (default 5m) or --max-len packets.

--camera and --input may be repeated: the n-th --camera reads the n-th --input;
the other flags apply to every camera. Live inputs are reconnected forever
(capped exponential backoff); while Redis is down packets wait in memory for up
to --buffer of stream time. SIGINT/SIGTERM flush the buffer and exit 0.

Many cameras over N processes (on N machines): give every process the same
camera list (--camera/--input pairs, --cameras-file, or --cameras-from redis)
and --lease: each camera is then ingested by exactly one process, which holds
a lease on it in Redis (SET NX PX, renewed every lease/4, released on exit);
processes take an even share, and the cameras of a process that died are taken
over by the others within the lease time. With --cameras-from redis the list is
the hash --cameras-key (field: camera id, value: input URL), re-read every
lease/4, so cameras can be added and removed while running.`,
		Example: `  # a camera pushes RTMP to us
  chrysalis ingest --redis-url redis://localhost:6379 --camera cam1 --listen --input rtmp://0.0.0.0:1935/live/cam1
  # pull RTSP over TCP
  chrysalis ingest --camera door --input rtsp://user:pass@10.0.0.7/stream1 --rtsp-transport tcp
  # a file as a live camera
  chrysalis ingest --camera demo --input testdata/clip720.mp4 --realtime --loop --max-len 500
  # 1,000 cameras over N processes: run this on each machine
  redis-cli HSET chrysalis:cameras door rtsp://10.0.0.7/s1 lobby rtsp://10.0.0.8/s1
  chrysalis ingest --redis-url 'redis://h1:6379?addr=h2:6379&addr=h3:6379' --cameras-from redis --lease 10s`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if camerasFile != "" {
				fc, fi, err := readCamerasFile(camerasFile)
				if err != nil {
					return err
				}
				cams, inputs = append(cams, fc...), append(inputs, fi...)
			}
			switch camerasFrom {
			case "", "flags":
			case "redis":
				if leaseTTL == 0 {
					leaseTTL = 10 * time.Second
				}
			default:
				return usagef("bad --cameras-from %q: want redis (or leave it out: --camera/--input and --cameras-file)", camerasFrom)
			}
			switch {
			case leaseTTL < 0 || (leaseTTL > 0 && leaseTTL < 400*time.Millisecond):
				return usagef("--lease %v: want at least 400ms (10s is usual)", leaseTTL)
			case leaseTTL > 0 && metricsAddr != "":
				return usagef("--metrics is not available with --lease yet (the cameras change as leases move)")
			case camerasFrom == "redis" && len(cams) > 0:
				return usagef("--cameras-from redis takes the camera list from Redis: leave out --camera and --cameras-file")
			case camerasFrom == "redis":
			case len(cams) == 0:
				return usagef("no camera: pass --camera ID (with --input URL|FILE)")
			case len(inputs) == 0:
				return usagef("no input: pass --input URL|FILE for camera %q", cams[0])
			case len(cams) != len(inputs):
				return usagef("%d --camera but %d --input: give one --input per --camera, in the same order", len(cams), len(inputs))
			case buffer < 0 || maxAge < 0 || maxLen < 0 || readTO < 0 || statusEvery < 0:
				return usagef("--buffer, --max-age, --max-len, --read-timeout and --status-every must not be negative")
			}
			ret := cache.Retention{MaxAge: maxAge, MaxLen: maxLen}
			if cmd.Flags().Changed("max-len") && !cmd.Flags().Changed("max-age") {
				ret.MaxAge = 0 // --max-len alone replaces the default age bound
			}
			if ret.MaxAge == 0 && ret.MaxLen == 0 {
				return usagef("unbounded cache: set --max-age (e.g. 5m) or --max-len (packets)")
			}
			inOpts := map[string]string{}
			if rtspTransport != "" {
				inOpts["rtsp_transport"] = rtspTransport
			}
			for _, o := range opts {
				k, v, ok := strings.Cut(o, "=")
				if !ok || k == "" {
					return usagef("bad --input-option %q: want key=value", o)
				}
				inOpts[k] = v
			}
			log, resetLog := setupLogging(verbose)
			defer resetLog()
			mkcfg := func(cam, input string) ingest.Config {
				return ingest.Config{
					Camera: cam, Input: input, Format: inputForm, Listen: listen, Realtime: realtime,
					Loop: loop, InputOptions: inOpts, ReadTimeout: readTO, Buffer: buffer, Logger: log,
				}
			}
			cfgs := make([]ingest.Config, len(cams))
			for i := range cams {
				cfgs[i] = mkcfg(cams[i], inputs[i])
			}
			if camerasFrom != "redis" {
				if err := ingest.ValidateAll(cfgs); err != nil {
					return usagef("%v", err)
				}
			}
			for i, in := range inputs {
				if inputForm == "" && !strings.Contains(in, ":") { // a plain file path (not lavfi, v4l2, pipe:...)
					if _, err := os.Stat(in); err != nil {
						return usagef("camera %q: input file: %v", cams[i], err) // bad input: exit 2, not a runtime failure
					}
				}
			}

			var mln net.Listener
			if metricsAddr != "" {
				var err error
				if mln, err = listenMetrics(metricsAddr); err != nil {
					return err
				}
				defer mln.Close()
			}

			dctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
			rc, err := rf.dial(dctx, rediscache.Options{Retention: ret, Logger: log})
			cancel()
			if err != nil {
				return err
			}
			defer rc.Close()
			if leaseTTL > 0 {
				lc := leasedCameras{rc: rc, log: log, mkcfg: mkcfg, fixed: cfgs, key: camerasKey, fromRedis: camerasFrom == "redis"}
				log.Info("ingest starting with leases", "cameras", len(cfgs), "from", camerasFrom, "lease", leaseTTL,
					"max_age", ret.MaxAge, "max_len", ret.MaxLen)
				return lc.run(cmd.Context(), lease.Options{Client: rc.Client(), Prefix: leasePrefix, TTL: leaseTTL, Logger: log})
			}
			ins, err := ingest.NewAll(rc, cfgs)
			if err != nil {
				return usagef("%v", err)
			}
			log.Info("ingest starting", "cameras", len(cfgs), "max_age", ret.MaxAge, "max_len", ret.MaxLen)
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()
			var wg sync.WaitGroup
			defer wg.Wait()
			defer stop() // runs first: the helpers below stop, then wg.Wait
			if mln != nil {
				reg := metrics.NewRegistry()
				reg.MustRegister(metrics.Ingest(ins), metrics.Cache(rc, cams))
				ready := metrics.IngestReady(ins, max(readTO, ingest.DefaultReadTimeout))
				mux := metrics.Mux(reg, metrics.CacheReady(rc, cams), ready)
				log.Info("serving metrics", "url", "http://"+mln.Addr().String()+"/metrics")
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := serveUntil(ctx, mln, mux); err != nil {
						log.Error("metrics server stopped", "err", err)
					}
				}()
			}
			if statusEvery > 0 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					logStatus(ctx, log, ins, statusEvery)
				}()
			}
			return ingest.RunIngests(ctx, ins) // its errors say "ingest: camera ...": no second prefix
		},
	}
	rf.register(c)
	f := c.Flags()
	f.StringArrayVar(&cams, "camera", nil, "camera id (the <cam> of the Redis keys); repeat for several cameras")
	f.StringArrayVar(&inputs, "input", nil, "input URL (rtmp://, rtsp://, http://, srt://, ...) or file; one per --camera")
	f.BoolVar(&listen, "listen", false, "act as the server the camera pushes to (e.g. --input rtmp://0.0.0.0:1935/live/cam)")
	f.BoolVar(&realtime, "realtime", false, "pace file packets by their timestamps, like ffmpeg -re")
	f.BoolVar(&loop, "loop", false, "restart the input at its end (files), timestamps keep increasing")
	f.DurationVar(&buffer, "buffer", ingest.DefaultBuffer, "packet time kept in memory while Redis is failing; oldest dropped beyond it")
	f.DurationVar(&maxAge, "max-age", 5*time.Minute, "keep this much video per camera in Redis")
	f.Int64Var(&maxLen, "max-len", 0, "keep at most this many packets per camera (alone, replaces the --max-age default)")
	f.DurationVar(&readTO, "read-timeout", ingest.DefaultReadTimeout, "an input silent this long is reconnected")
	f.StringVar(&rtspTransport, "rtsp-transport", "", "RTSP transport: tcp, udp, udp_multicast or http")
	f.StringVarP(&inputForm, "format", "f", "", "force the input format (ffmpeg -f), e.g. flv, mpegts")
	f.StringArrayVar(&opts, "input-option", nil, "extra FFmpeg input option key=value (repeatable)")
	f.StringVar(&metricsAddr, "metrics", "", "serve /metrics (Prometheus), /healthz and /readyz on this host:port (no authentication: keep it on loopback or a private network)")
	f.DurationVar(&statusEvery, "status-every", time.Minute, "log a one-line status of all cameras this often (0: never)")
	f.BoolVarP(&verbose, "verbose", "v", false, "debug logging, FFmpeg warnings")
	f.DurationVar(&leaseTTL, "lease", 0, "share the cameras with other ingest processes through leases of this length in Redis (e.g. 10s); each camera is ingested by one process")
	f.StringVar(&camerasFile, "cameras-file", "", "file of cameras, one per line: ID INPUT (# starts a comment); adds to --camera/--input")
	f.StringVar(&camerasFrom, "cameras-from", "", "redis: read the camera list from the hash --cameras-key (field: id, value: input), re-read while running; implies --lease 10s")
	f.StringVar(&camerasKey, "cameras-key", "chrysalis:cameras", "the hash --cameras-from redis reads")
	f.StringVar(&leasePrefix, "lease-prefix", "chrysalis:lease:", "key prefix of the leases (<prefix><camera>) and of the worker set (<prefix>workers)")
	return c
}

// readCamerasFile reads "ID INPUT" lines; blank lines and lines starting
// with # are skipped.
func readCamerasFile(path string) (cams, inputs []string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, usagef("--cameras-file: %v", err)
	}
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, nil, usagef("--cameras-file %s line %d: want ID INPUT, got %d fields", path, n+1, len(f))
		}
		cams, inputs = append(cams, f[0]), append(inputs, f[1])
	}
	return cams, inputs, nil
}

// leasedCameras runs, through package lease, an ingest for each camera
// this process holds a lease on.
type leasedCameras struct {
	rc        *rediscache.Cache
	log       *slog.Logger
	mkcfg     func(cam, input string) ingest.Config
	fixed     []ingest.Config
	key       string
	fromRedis bool

	mu   sync.Mutex
	cfgs map[string]ingest.Config
}

func (l *leasedCameras) list(ctx context.Context) ([]string, error) {
	cfgs := map[string]ingest.Config{}
	if l.fromRedis {
		m, err := l.rc.Client().HGetAll(ctx, l.key).Result()
		if err != nil {
			return nil, rediscache.Classify(err)
		}
		for cam, in := range m {
			cfg := l.mkcfg(cam, in)
			if err := cfg.Validate(); err != nil {
				l.log.Warn("skipping a camera of the list", "key", l.key, "camera", cam, "err", err)
				continue
			}
			cfgs[cam] = cfg
		}
	} else {
		for _, c := range l.fixed {
			cfgs[c.Camera] = c
		}
	}
	l.mu.Lock()
	l.cfgs = cfgs
	l.mu.Unlock()
	return slices.Sorted(maps.Keys(cfgs)), nil
}

func (l *leasedCameras) run(ctx context.Context, o lease.Options) error {
	// A cache that refuses every write (a cluster node named as one
	// server) stops the process, as without leases.
	rctx, fatal := context.WithCancelCause(ctx)
	defer fatal(nil)
	err := lease.Run(rctx, o, l.list, func(ctx context.Context, cam string) error {
		l.mu.Lock()
		cfg, ok := l.cfgs[cam]
		l.mu.Unlock()
		if !ok {
			return nil
		}
		// A lost lease must stop the writes before another process takes
		// the camera: flush for a short time only.
		cfg.FlushTimeout = max(o.TTL/8, 50*time.Millisecond)
		in, err := ingest.New(l.rc, cfg)
		if err != nil {
			return err
		}
		err = in.Run(ctx)
		if errors.Is(err, cache.ErrMisconfigured) {
			fatal(err)
		}
		return err
	})
	if ctx.Err() == nil && rctx.Err() != nil {
		return context.Cause(rctx)
	}
	return err
}
