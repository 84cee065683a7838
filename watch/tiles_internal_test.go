package watch

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
)

// A tile request that passed the closed check just before Run's end closed
// the tiles must not open a camera afterwards (nothing would close it).
func TestTileAfterCloseOpensNoCamera(t *testing.T) {
	mc := cache.NewMemory(cache.Retention{MaxAge: 20 * time.Second})
	defer mc.Close()
	w, err := New(Options{Client: chrysalis.New(mc, chrysalis.Options{}), Cameras: []string{"a"}, DisableHLS: true})
	if err != nil {
		t.Fatal(err)
	}
	s := &tileShot{}
	w.tiles.shots["a"] = s
	defer w.tiles.close()
	s.mu.Lock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req := httptest.NewRequest("GET", "http://127.0.0.1/api/tile/a", nil).WithContext(ctx)
		w.Handler().ServeHTTP(rec, req)
	}()
	// Wait for the request to block on the shot's lock, past the check.
	deadline := time.Now().Add(10 * time.Second)
	for !blockedIn("serveTile") {
		if time.Now().After(deadline) {
			s.mu.Unlock()
			t.Fatal("the request did not reach the shot's lock")
		}
		runtime.Gosched()
	}
	// What close does meanwhile (it holds s.mu for the shot).
	w.tiles.mu.Lock()
	w.tiles.closed = true
	w.tiles.mu.Unlock()
	s.shut()
	s.mu.Unlock()
	<-done
	s.mu.Lock()
	opened := s.cam != nil
	s.mu.Unlock()
	if opened || rec.Code != http.StatusServiceUnavailable {
		t.Errorf("after close: camera opened %v, status %d %q (want 503)", opened, rec.Code, rec.Body)
	}
}

// blockedIn reports a goroutine waiting for a mutex inside function fn.
func blockedIn(fn string) bool {
	buf := make([]byte, 1<<20)
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, fn) && strings.Contains(g, "sync.(*Mutex).") {
			return true
		}
	}
	return false
}
