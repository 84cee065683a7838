package main

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/ingest"
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
to --buffer of stream time. SIGINT/SIGTERM flush the buffer and exit 0.`,
		Example: `  # a camera pushes RTMP to us
  chrysalis ingest --redis-url redis://localhost:6379 --camera cam1 --listen --input rtmp://0.0.0.0:1935/live/cam1
  # pull RTSP over TCP
  chrysalis ingest --camera door --input rtsp://user:pass@10.0.0.7/stream1 --rtsp-transport tcp
  # a file as a live camera
  chrysalis ingest --camera demo --input testdata/clip720.mp4 --realtime --loop --max-len 500`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
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
			cfgs := make([]ingest.Config, len(cams))
			for i := range cams {
				cfgs[i] = ingest.Config{
					Camera: cams[i], Input: inputs[i], Format: inputForm, Listen: listen, Realtime: realtime,
					Loop: loop, InputOptions: inOpts, ReadTimeout: readTO, Buffer: buffer, Logger: log,
				}
			}
			if err := ingest.ValidateAll(cfgs); err != nil {
				return usagef("%v", err)
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
	return c
}
