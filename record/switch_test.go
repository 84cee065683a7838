package record_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/chryscloud/chrysalis-go/record"
)

// stop ends what Notify started while its context is still live (it
// used to wait for the context: a caller stopping early hung).
func TestRedisSwitchNotifyStop(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, stop := record.RedisSwitch(rdb).(record.Notifier).Notify(ctx, []string{"cam"})
	eventually(t, 5*time.Second, "subscribed", func() bool { return rdb.PubSubNumPat(ctx).Val() == 1 })
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cancel() // let the goroutine end, then fail
		<-done
		t.Fatal("stop did not return while the context was live")
	}
}
