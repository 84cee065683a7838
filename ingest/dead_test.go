package ingest_test

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/ingest"
	"github.com/chryscloud/chrysalis-go/internal/testx"
)

// silentServer accepts TCP connections and never says a word.
func silentServer(t *testing.T) (addr string, accepted func() int, closeFn func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	var once sync.Once
	closeFn = func() {
		once.Do(func() {
			l.Close()
			<-done
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
		})
	}
	t.Cleanup(closeFn)
	accepted = func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
	return l.Addr().String(), accepted, closeFn
}

// TestDeadInputNeverHangs: an input that never produces anything (a
// listener nobody pushes to, a server that accepts and never speaks) does
// not hang Run: cancel returns within 2 s, no goroutine is left behind,
// and with a short ReadTimeout the silent server is detected and
// reconnected.
func TestDeadInputNeverHangs(t *testing.T) {
	t.Run("ListenNobodyPushes", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		url := fmt.Sprintf("rtmp://127.0.0.1:%d/live/cam", testx.FreePort(t))
		in, err := ingest.New(cache.NewMemory(cache.Retention{}), ingest.Config{Camera: "idle", Input: url, Listen: true,
			ReadTimeout: 300 * time.Millisecond, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		r := start(t, in)
		time.Sleep(time.Second) // longer than ReadTimeout: waiting for a pusher is not a dead input
		if st := in.Stats(); st.Reconnects != 0 || st.Packets != 0 {
			t.Errorf("while waiting for a pusher: %+v", st)
		}
		err, took := r.stop(t)
		t.Logf("cancel while listening: Run returned %v after %v", err, took)
		if err != nil || took > 2*time.Second {
			t.Fatalf("Run returned %v after %v; want nil within 2s", err, took)
		}
	})

	t.Run("SilentServerCancel", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		addr, accepted, closeSrv := silentServer(t)
		defer closeSrv()
		// Default ReadTimeout (10s): only the cancel can end the wait.
		in, err := ingest.New(cache.NewMemory(cache.Retention{}), ingest.Config{Camera: "silent",
			Input: "rtmp://" + addr + "/live/cam", Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		r := start(t, in)
		waitFor(t, 5*time.Second, "the ingest to connect", func() bool { return accepted() >= 1 })
		time.Sleep(300 * time.Millisecond)
		err, took := r.stop(t)
		t.Logf("cancel while blocked in the RTMP handshake: Run returned %v after %v", err, took)
		if err != nil || took > 2*time.Second {
			t.Fatalf("Run returned %v after %v; want nil within 2s", err, took)
		}
	})

	t.Run("SilentServerReadTimeout", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		addr, accepted, closeSrv := silentServer(t)
		defer closeSrv()
		in, err := ingest.New(cache.NewMemory(cache.Retention{}), ingest.Config{Camera: "silent",
			Input: "rtmp://" + addr + "/live/cam", ReadTimeout: 300 * time.Millisecond,
			BackoffMin: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		r := start(t, in)
		waitFor(t, 5*time.Second, "two reconnects", func() bool { return in.Stats().Reconnects >= 2 })
		st := in.Stats()
		t.Logf("2 reconnects after %v, %d connections accepted; last error %q",
			time.Since(t0).Round(time.Millisecond), accepted(), st.LastError)
		if !strings.Contains(st.LastError, "no data for 300ms") {
			t.Errorf("last error %q does not name the read timeout", st.LastError)
		}
		err, took := r.stop(t)
		if err != nil || took > 2*time.Second {
			t.Fatalf("Run returned %v after %v; want nil within 2s", err, took)
		}
	})
}
