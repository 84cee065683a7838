package rediscache_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

// TestTLSToPlaintextServer: rediss:// to a server that speaks plain Redis
// fails with ErrTLS and one line saying so, not a timeout, and never falls
// back to plain text.
func TestTLSToPlaintextServer(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{Password: "pw"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	t0 := time.Now()
	c, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: "rediss://:pw@" + srv.Addr() + "/0"}, rediscache.Options{})
	took := time.Since(t0)
	t.Logf("after %v: %v", took.Round(time.Millisecond), err)
	if err == nil {
		c.Close()
		t.Fatal("connected: a TLS URL fell back to plain text")
	}
	if !errors.Is(err, rediscache.ErrTLS) || !errors.Is(err, rediscache.ErrNoTLS) || !strings.Contains(err.Error(), "does not speak TLS") ||
		strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "pw") {
		t.Fatalf("got %q, want one ErrTLS line saying the server does not speak TLS", err)
	}
	if took > 4*time.Second {
		t.Fatalf("reported after %v: the dial deadline (2 s) + the 1 s plain-text check is the bound", took)
	}
	// go-redis's pool goes on dialing in the background after Close (up
	// to 5 attempts, each bounded by its DialTimeout); with the server
	// gone they fail at once. Wait for them before goleak looks.
	srv.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		if !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "queuedNewConn") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("go-redis's background dial still runs 10 s after the server stopped")
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}
