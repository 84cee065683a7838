package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/ingest"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

// TestFileIngestRefusedByCache: a file ingested as a Redis user without
// write rights ends Run with one clear error (cache.ErrRefused, the
// camera, NOPERM) instead of retrying forever. (A live input goes on,
// dropping what the cache does not take, with one Error log line.)
func TestFileIngestRefusedByCache(t *testing.T) {
	requireFFmpeg(t)
	srv := testredis.Start(t, testredis.Options{})
	admin := dialRedis(t, srv, cache.Retention{})
	ctx := context.Background()
	if err := admin.Client().Do(ctx, "ACL", "SETUSER", "reader", "on", ">pw", "~*", "+@read").Err(); err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rc, err := rediscache.Dial(dctx, rediscache.ConnOptions{URL: fmt.Sprintf("redis://reader:pw@%s/0", srv.Addr())},
		rediscache.Options{Layout: rediscache.LayoutEdge})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()

	in, err := ingest.New(rc, ingest.Config{Camera: "ro", Input: gopClip(t, 1), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, in)
	err = r.wait(t, 10*time.Second)
	t.Logf("Run: %v", err)
	if !errors.Is(err, cache.ErrRefused) || !errors.Is(err, rediscache.ErrPermission) ||
		!strings.Contains(err.Error(), `camera "ro"`) || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("Run: %v; want a cache.ErrRefused error naming the camera", err)
	}
	if st := in.Stats(); st.Written != 0 || st.Buffered != 0 {
		t.Fatalf("stats %+v", st)
	}

	// A looped file paced in real time (a simulated camera) is a file too.
	live, err := ingest.New(rc, ingest.Config{Camera: "ro2", Input: gopClip(t, 1), Realtime: true, Loop: true,
		Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	lr := start(t, live)
	if err := lr.wait(t, 10*time.Second); !errors.Is(err, cache.ErrRefused) {
		t.Fatalf("looped file: %v", err)
	}
}
