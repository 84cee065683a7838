package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/chryscloud/chrysalis-go/ingest"
)

// listenMetrics opens the --metrics listener; a bad or busy address is a
// usage error.
func listenMetrics(addr string) (net.Listener, error) {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return nil, usagef("bad --metrics %q: want host:port such as 127.0.0.1:9090", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, usagef("cannot serve metrics on --metrics %s: %v", addr, err)
	}
	return ln, nil
}

// serveUntil serves h on ln until ctx ends, then shuts the server down.
func serveUntil(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics server: %w", err)
	}
	return nil
}

// logStatus logs one line about every camera each `every` until ctx ends:
// totals and their change since the previous line, and the cameras that
// are disconnected or silent.
func logStatus(ctx context.Context, log *slog.Logger, ins []*ingest.Ingest, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var prev ingest.Stats
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		var sum ingest.Stats
		connected := 0
		var down []string
		for _, in := range ins {
			s := in.Stats()
			sum.Packets += s.Packets
			sum.Written += s.Written
			sum.Dropped += s.Dropped
			sum.Reconnects += s.Reconnects
			sum.CacheErrors += s.CacheErrors
			sum.Buffered += s.Buffered
			switch {
			case !s.Connected:
				down = append(down, in.Camera())
			case s.LastPacket.IsZero() || now.Sub(s.LastPacket) > every:
				down = append(down, in.Camera()+"(silent)")
			default:
				connected++
			}
		}
		rate := float64(sum.Packets-prev.Packets) / now.Sub(last).Seconds()
		attrs := []any{"cameras", len(ins), "live", connected, "packets", sum.Packets,
			"pkt_per_s", fmt.Sprintf("%.1f", rate), "written", sum.Written,
			"dropped", sum.Dropped, "dropped_new", sum.Dropped - prev.Dropped,
			"reconnects", sum.Reconnects, "reconnects_new", sum.Reconnects - prev.Reconnects,
			"cache_errors_new", sum.CacheErrors - prev.CacheErrors, "buffered", sum.Buffered}
		if len(down) > 0 {
			attrs = append(attrs, "down", strings.Join(down, ","))
		}
		log.Info("ingest status", attrs...)
		prev, last = sum, now
	}
}
