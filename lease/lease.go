// Package lease spreads a list of items (cameras) over worker processes
// through leases in Redis, so that each item is worked on by exactly one
// live worker and an item whose worker died is taken over by another
// within the lease time.
//
// A lease is one key, <prefix><item>, holding the owner's id, set with
// SET NX PX (taken only when free) and renewed by its holder with a
// compare-and-renew script (PEXPIRE only while the key still holds the
// holder's id), released on exit with a compare-and-delete. Workers also
// announce themselves in a sorted set, <prefix>workers (member: owner id,
// score: expiry in unix ms), so each can count the live workers and take
// no more than its fair share, ceil(items / workers): a worker holding
// more (one joined) releases the excess, which the newcomer takes. Every
// command names one key, so it works unchanged on a Redis Cluster.
//
// Guarantees: a holder stops an item's work when it has not renewed the
// lease for TTL − Margin (its own clock), before the key can expire in
// Redis; an item is taken over within TTL + Every of its holder's death.
// The bound assumes clocks that run at the same rate (not synchronised
// clocks) and a work function that stops within Margin of its context
// ending.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options configures Run. Client is required.
type Options struct {
	Client redis.UniversalClient
	// Prefix of the lease keys. Default "chrysalis:lease:".
	Prefix string
	// Owner identifies this worker; default host-pid-random.
	Owner string
	// TTL is the lease time. Default 10 s.
	TTL time.Duration
	// Every is how often leases are renewed, the list re-read and free
	// items taken. Default TTL/4.
	Every time.Duration
	// Margin: work stops when a lease was not renewed for TTL − Margin.
	// Default TTL/4.
	Margin time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// ErrNoClient: Options.Client is nil.
var ErrNoClient = errors.New("lease: no Redis client")

func (o *Options) defaults() error {
	if o.Client == nil {
		return ErrNoClient
	}
	if o.Prefix == "" {
		o.Prefix = "chrysalis:lease:"
	}
	if o.Owner == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		o.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if o.TTL <= 0 {
		o.TTL = 10 * time.Second
	}
	if o.Every <= 0 {
		o.Every = o.TTL / 4
	}
	if o.Margin <= 0 {
		o.Margin = o.TTL / 4
	}
	if o.Every >= o.TTL-o.Margin {
		return fmt.Errorf("lease: renewing every %v cannot keep a %v lease with a %v margin", o.Every, o.TTL, o.Margin)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// renew extends the lease only while it is still ours.
var renew = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// release deletes the lease only while it is still ours.
var release = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Key is the lease key of item.
func (o Options) Key(item string) string { return o.Prefix + item }

// WorkersKey is the sorted set of live workers.
func (o Options) WorkersKey() string { return o.Prefix + "workers" }

// Holder returns the owner id holding item's lease ("" when free).
func Holder(ctx context.Context, rdb redis.UniversalClient, prefix, item string) (string, error) {
	if prefix == "" {
		prefix = "chrysalis:lease:"
	}
	s, err := rdb.Get(ctx, prefix+item).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return s, err
}

// Work is run for each item this worker holds; ctx ends when the lease
// is lost, given up for balance, or Run ends. A nil return ends the
// item's work for good in this worker (a file that ended) while it keeps
// the lease; an error is logged and the work is restarted at the next
// round while the lease holds.
type Work func(ctx context.Context, item string) error

// held is one item this worker holds.
type held struct {
	cancel  context.CancelFunc
	done    chan struct{}
	renewed time.Time // last successful take or renewal
	ended   bool      // work returned nil: keep the lease, do not restart
	err     error
	seq     int64 // order of taking
}

// Run keeps leases on a share of the items list returns (called each
// round, so the list may change) and runs work for each held item, until
// ctx ends; then every work is stopped and its lease released. It returns
// nil when ctx ends, or an error from list when the first call fails.
func Run(ctx context.Context, o Options, list func(ctx context.Context) ([]string, error), work Work) error {
	if err := o.defaults(); err != nil {
		return err
	}
	r := &runner{o: o, list: list, work: work, held: map[string]*held{}}
	items, err := list(ctx)
	if err != nil {
		return fmt.Errorf("lease: listing items: %w", err)
	}
	defer r.stopAll()
	t := time.NewTicker(o.Every)
	defer t.Stop()
	for {
		r.round(ctx, items)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if l, err := list(ctx); err != nil {
			o.Logger.Warn("lease: listing items failed; keeping the last list", "err", err)
		} else {
			items = l
		}
	}
}

type runner struct {
	o    Options
	list func(context.Context) ([]string, error)
	work Work
	mu   sync.Mutex
	held map[string]*held
	seq  int64
	wg   sync.WaitGroup
}

// round renews, drops lost leases, balances and takes free items.
func (r *runner) round(ctx context.Context, items []string) {
	o, rdb := r.o, r.o.Client
	now := time.Now()
	ttl := strconv.FormatInt(o.TTL.Milliseconds(), 10)
	// Announce ourselves and count the live workers.
	pipe := rdb.Pipeline()
	pipe.ZAdd(ctx, o.WorkersKey(), redis.Z{Score: float64(now.Add(o.TTL).UnixMilli()), Member: o.Owner})
	pipe.ZRemRangeByScore(ctx, o.WorkersKey(), "-inf", strconv.FormatInt(now.UnixMilli(), 10))
	pipe.PExpire(ctx, o.WorkersKey(), 2*o.TTL)
	card := pipe.ZCard(ctx, o.WorkersKey())
	_, perr := pipe.Exec(ctx)
	workers := max(card.Val(), 1)

	inList := map[string]bool{}
	for _, it := range items {
		inList[it] = true
	}
	// Renew what we hold; stop what we lost or what left the list.
	for _, it := range r.names() {
		h := r.get(it)
		select {
		case <-h.done:
			if h.err != nil && !h.ended {
				o.Logger.Warn("lease: work failed; restarting it", "item", it, "err", h.err)
				h.err = nil
				r.start(ctx, it, h)
			}
		default:
		}
		if !inList[it] {
			r.drop(ctx, it, "removed from the list")
			continue
		}
		n, err := renew.Run(ctx, rdb, []string{o.Key(it)}, o.Owner, ttl).Int()
		switch {
		case err == nil && n == 1:
			h.renewed = now
		case err == nil:
			r.drop(ctx, it, "lease lost to another worker")
			continue
		case now.Sub(h.renewed) >= o.TTL-o.Margin:
			r.drop(ctx, it, "lease not renewed in time: "+err.Error())
			continue
		}
	}
	if perr != nil {
		return // no Redis: take nothing new this round
	}
	fair := (int64(len(items)) + workers - 1) / workers
	// Balance: give up the excess (the items taken last).
	if names := r.names(); int64(len(names)) > fair {
		for _, it := range names[fair:] {
			r.drop(ctx, it, "rebalancing")
		}
	}
	// Take free items up to the fair share, in list order.
	for _, it := range items {
		if int64(len(r.names())) >= fair {
			break
		}
		if r.get(it) != nil {
			continue
		}
		ok, err := rdb.SetNX(ctx, o.Key(it), o.Owner, o.TTL).Result()
		if err != nil || !ok {
			continue
		}
		o.Logger.Info("lease: took", "item", it, "owner", o.Owner, "workers", workers, "share", fair)
		r.mu.Lock()
		r.seq++
		h := &held{renewed: now, seq: r.seq}
		r.held[it] = h
		r.mu.Unlock()
		r.start(ctx, it, h)
	}
}

// names lists held items, oldest taken first.
func (r *runner) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.held))
	for k := range r.held {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b string) int { return int(r.held[a].seq - r.held[b].seq) })
	return out
}

func (r *runner) get(it string) *held {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held[it]
}

func (r *runner) start(ctx context.Context, it string, h *held) {
	wctx, cancel := context.WithCancel(ctx)
	h.cancel, h.done = cancel, make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(h.done)
		err := r.work(wctx, it)
		if err == nil && wctx.Err() == nil {
			h.ended = true
		}
		h.err = err
	}()
}

// drop stops an item's work, waits for it, and releases its lease.
func (r *runner) drop(ctx context.Context, it, why string) {
	r.mu.Lock()
	h := r.held[it]
	delete(r.held, it)
	r.mu.Unlock()
	if h == nil {
		return
	}
	r.o.Logger.Info("lease: giving up", "item", it, "why", why)
	h.cancel()
	<-h.done
	_ = release.Run(context.WithoutCancel(ctx), r.o.Client, []string{r.o.Key(it)}, r.o.Owner).Err()
}

// stopAll stops every work and releases every lease (at Run's end).
func (r *runner) stopAll() {
	var wg sync.WaitGroup
	for _, it := range r.names() {
		wg.Go(func() { r.drop(context.Background(), it, "stopping") })
	}
	wg.Wait()
	r.wg.Wait()
	_ = r.o.Client.ZRem(context.Background(), r.o.WorkersKey(), r.o.Owner).Err()
}
