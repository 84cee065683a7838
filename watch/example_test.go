package watch_test

import (
	"context"
	"log"
	"net/http"
	"os/signal"
	"syscall"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/watch"
)

// Serve the watch page for two cameras in Redis until Ctrl-C.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cl, err := chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: "redis://127.0.0.1:6379/0"}, chrysalis.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	w, err := watch.New(watch.Options{Client: cl, Cameras: []string{"cam1", "door"}})
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: w.Handler()}
	go func() {
		w.Run(ctx) // returns once ctx ends and its streams have stopped
		srv.Close()
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
