package lease_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/chryscloud/chrysalis-go/lease"
)

// tracker records which worker runs which item, and fails the test when
// two run the same item at once.
type tracker struct {
	t       *testing.T
	mu      sync.Mutex
	running map[string]string // item -> worker
	starts  int
}

func (tr *tracker) work(worker string) lease.Work {
	return func(ctx context.Context, item string) error {
		tr.mu.Lock()
		if w, ok := tr.running[item]; ok {
			tr.t.Errorf("%s started on %s while %s runs it", item, worker, w)
		}
		tr.running[item] = worker
		tr.starts++
		tr.mu.Unlock()
		<-ctx.Done()
		tr.mu.Lock()
		delete(tr.running, item)
		tr.mu.Unlock()
		return nil
	}
}

// counts returns how many items each worker runs.
func (tr *tracker) counts() map[string]int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	m := map[string]int{}
	for _, w := range tr.running {
		m[w]++
	}
	return m
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !ok() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		<-tick.C
	}
	return time.Since(start)
}

// Three workers share 9 items evenly, each item run by one worker at a
// time; a worker that stops hands its items over; a worker whose leases
// are stolen (another owner's value) stops those items; on exit every
// lease is released.
func TestShareAndHandOver(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) }) // after the server's cleanup
	srv := testredis.Start(t, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	items := make([]string, 9)
	for i := range items {
		items[i] = fmt.Sprintf("cam%d", i)
	}
	list := func(context.Context) ([]string, error) { return items, nil }
	tr := &tracker{t: t, running: map[string]string{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const ttl = 800 * time.Millisecond
	ctxs := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	for _, w := range []string{"w1", "w2", "w3"} {
		ctx, cancel := context.WithCancel(context.Background())
		ctxs[w] = cancel
		wg.Go(func() {
			if err := lease.Run(ctx, lease.Options{Client: rdb, Owner: w, TTL: ttl, Logger: log}, list, tr.work(w)); err != nil {
				t.Error(err)
			}
		})
	}
	defer func() {
		for _, c := range ctxs {
			c()
		}
		wg.Wait()
	}()
	waitFor(t, 10*time.Second, "3 each", func() bool {
		c := tr.counts()
		return c["w1"] == 3 && c["w2"] == 3 && c["w3"] == 3
	})
	for _, it := range items {
		h, err := lease.Holder(context.Background(), rdb, "", it)
		if err != nil || h != tr.counts2(it) {
			t.Fatalf("%s: lease holder %q (%v), runner %q", it, h, err, tr.counts2(it))
		}
	}
	// w3 stops cleanly: its leases are released at once, w1 and w2 take them.
	ctxs["w3"]()
	d := waitFor(t, 10*time.Second, "w1 and w2 with all 9", func() bool {
		c := tr.counts()
		return c["w1"]+c["w2"] == 9 && c["w3"] == 0
	})
	t.Logf("handed over in %v after a clean stop", d)
	// Another owner overwrites a lease of w1's: w1 stops that item.
	var stolen string
	for it, w := range tr.snapshot() {
		if w == "w1" {
			stolen = it
			break
		}
	}
	if err := rdb.Set(context.Background(), "chrysalis:lease:"+stolen, "thief", ttl).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "w1 stops the stolen item", func() bool { return tr.snapshot()[stolen] == "" })
	ctxs["w1"]()
	ctxs["w2"]()
	wg.Wait()
	keys, _ := rdb.Keys(context.Background(), "chrysalis:lease:cam*").Result()
	if len(keys) != 1 { // only the thief's
		t.Fatalf("leases left after every worker stopped: %v", keys)
	}
}

func (tr *tracker) snapshot() map[string]string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	m := map[string]string{}
	for k, v := range tr.running {
		m[k] = v
	}
	return m
}

func (tr *tracker) counts2(item string) string { return tr.snapshot()[item] }

func TestOptionsErrors(t *testing.T) {
	list := func(context.Context) ([]string, error) { return nil, nil }
	if err := lease.Run(context.Background(), lease.Options{}, list, nil); err != lease.ErrNoClient {
		t.Fatalf("no client: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	if err := lease.Run(context.Background(), lease.Options{Client: rdb, TTL: time.Second, Every: time.Second}, list, nil); err == nil {
		t.Fatal("renewing every TTL accepted")
	}
}

// Two analytics workers share 4 cameras' graphs; when one stops, the other
// runs all 4.
func TestRunGraphs(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	srv := testredis.Start(t, testredis.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	cams := []string{"g1", "g2", "g3", "g4"}
	list := func(context.Context) ([]string, error) { return cams, nil }
	tr := &tracker{t: t, running: map[string]string{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	build := func(worker string) func(context.Context, string) (*flow.Graph, error) {
		return func(_ context.Context, cam string) (*flow.Graph, error) {
			g := flow.New(flow.Options{Logger: log})
			src := g.Source("cam", flow.SourceFunc(func(ctx context.Context, out chan<- flow.Image) error {
				return tr.work(worker)(ctx, cam)
			}))
			g.Sink("discard", flow.SinkFunc(func(ctx context.Context, in <-chan flow.Image) error {
				for range in {
				}
				return nil
			}), src)
			return g, nil
		}
	}
	var wg sync.WaitGroup
	cancels := map[string]context.CancelFunc{}
	for _, w := range []string{"a", "b"} {
		ctx, cancel := context.WithCancel(context.Background())
		cancels[w] = cancel
		wg.Go(func() {
			if err := lease.RunGraphs(ctx, lease.Options{Client: rdb, Owner: w, Prefix: "graphs:", TTL: 800 * time.Millisecond, Logger: log}, list, build(w)); err != nil {
				t.Error(err)
			}
		})
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
		wg.Wait()
	}()
	waitFor(t, 10*time.Second, "2 graphs each", func() bool { c := tr.counts(); return c["a"] == 2 && c["b"] == 2 })
	cancels["a"]()
	waitFor(t, 10*time.Second, "b runs all 4", func() bool { return tr.counts()["b"] == 4 })
}
