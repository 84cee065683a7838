package hls_test

import (
	"context"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/watch/hls"
)

// Serve every camera of a cache as HLS: players load
// http://127.0.0.1:8080/hls/<camera>/index.m3u8.
func ExampleServer() {
	var c cache.Cache = cache.NewMemory(cache.Retention{MaxAge: time.Minute}) // or rediscache.Dial
	hs := hls.NewServer(c, hls.ServerOptions{IdleTimeout: time.Minute})
	defer hs.Close() // stops the streams, removes their directories
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: hs}
	log.Fatal(srv.ListenAndServe())
}

// Write one camera's playlist and segments into a directory until ctx
// ends, e.g. for a web server that serves files.
func ExampleStream() {
	var c cache.Cache = cache.NewMemory(cache.Retention{MaxAge: time.Minute})
	dir, _ := os.MkdirTemp("", "cam1-hls")
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := hls.Stream(ctx, c, "cam1", dir, hls.Options{SegmentDuration: 2 * time.Second, ListSize: 5})
	log.Println(err) // context.DeadlineExceeded after a minute
}
