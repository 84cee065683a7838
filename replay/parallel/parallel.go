// Package parallel replays a long past window of one camera or many over
// N worker processes: the window is split at keyframes into work items,
// one per GOP, on a Redis stream, and workers take them through a consumer
// group (XREADGROUP), acknowledge each when done (XACK) and claim the items
// a dead worker held (XAUTOCLAIM after MinIdle), so that every GOP is
// processed to completion by one worker.
//
// Keys, for a group NAME: the stream chrysalis:replay:NAME (the items and
// the consumer group NAME) and chrysalis:replay:NAME:plan (the planner's
// lock, which expires a minute after a dead planner last renewed it, then
// the item count). Each command names one key (cluster-safe).
//
// Exactly once: an item's frames are handed to the worker's callback,
// then its done callback runs, then the item is acknowledged. A worker
// that dies before done leaves the item pending, and another worker
// processes the whole GOP again; so outputs committed in done (one write
// per GOP) cover every frame exactly once. A worker that dies after done
// and before XACK (microseconds) has its GOP done twice.
package parallel

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
)

// Item is one GOP of a camera's window: the frames whose cache time lies
// in [Start, End], decoded from the keyframe Key.
type Item struct {
	ID     string // the work stream's entry id
	Camera string
	GOP    int // the GOP's position in the camera's window, from 0
	Key    cache.ID
	Start  time.Time
	End    time.Time
}

// StreamKey is the work stream of group.
func StreamKey(group string) string { return "chrysalis:replay:" + group }

func planKey(group string) string { return StreamKey(group) + ":plan" }

// planningTTL bounds the planner's lock while it plans: renewed per
// camera, it expires this long after a planner died (the final plan has no
// expiry).
const planningTTL = time.Minute

// ErrPlanned: another process planned (or is planning) this group.
var ErrPlanned = errors.New("parallel: the group is already planned")

// Plan splits [from, to] of each camera at its keyframes into items, adds
// them to the group's stream and creates the consumer group. Only the
// first planner of a group plans (ErrPlanned for the others, who join
// with Worker). It returns the number of items. When writing the plan
// fails, the group is left unplanned (call Cleanup before planning again:
// the stream may hold some of the items).
func Plan(ctx context.Context, rdb redis.UniversalClient, c cache.Cache, group string, cams []string, from, to time.Time) (int, error) {
	if !from.Before(to) {
		return 0, fmt.Errorf("parallel: empty window %v..%v", from, to)
	}
	// The lock expires unless renewed, so a planner that dies mid-plan
	// does not leave the workers waiting for a plan forever (they then
	// report the group unplanned).
	ok, err := rdb.SetNX(ctx, planKey(group), "planning", planningTTL).Result()
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, ErrPlanned
	}
	var items []Item
	for _, cam := range cams {
		if ok, err := rdb.PExpire(ctx, planKey(group), planningTTL).Result(); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("parallel: group %q: the planning lock expired", group)
			}
			rdb.Del(context.WithoutCancel(ctx), planKey(group))
			return 0, err
		}
		it, err := split(ctx, c, cam, from, to)
		if err != nil {
			rdb.Del(context.WithoutCancel(ctx), planKey(group))
			return 0, err
		}
		items = append(items, it...)
	}
	pipe := rdb.Pipeline()
	for _, it := range items {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: StreamKey(group), Values: []any{
			"camera", it.Camera, "gop", it.GOP, "key", it.Key.String(),
			"start", it.Start.UnixMilli(), "end", it.End.UnixMilli()}})
	}
	pipe.XGroupCreateMkStream(ctx, StreamKey(group), group, "0")
	pipe.Set(ctx, planKey(group), len(items), 0)
	if _, err := pipe.Exec(ctx); err != nil {
		// Not planned: release the group (a stale "planning" or count
		// would make workers wait forever or take a broken plan, and a
		// retry fail with ErrPlanned).
		rdb.Del(context.WithoutCancel(ctx), planKey(group))
		return 0, fmt.Errorf("parallel: planning group %q: %w", group, err)
	}
	return len(items), nil
}

// split cuts cam's [from, to] at its keyframes.
func split(ctx context.Context, c cache.Cache, cam string, from, to time.Time) ([]Item, error) {
	fromID, err := cache.IDOf(from)
	if err != nil {
		return nil, err
	}
	toID, err := cache.IDOf(to)
	if err != nil {
		return nil, err
	}
	toID = cache.ID{MS: toID.MS, Seq: ^uint64(0)}
	var keys []cache.ID
	switch k, err := c.KeyframeAtOrBefore(ctx, cam, fromID); {
	case err == nil:
		keys = append(keys, k.ID)
	case !errors.Is(err, cache.ErrNotFound):
		return nil, err
	}
	kfs, err := c.Keyframes(ctx, cam, fromID, toID, 0)
	if err != nil {
		return nil, err
	}
	for _, k := range kfs {
		if len(keys) == 0 || k.ID.Compare(keys[len(keys)-1]) > 0 {
			keys = append(keys, k.ID)
		}
	}
	var out []Item
	for i, k := range keys {
		start := max(from.UnixMilli(), int64(k.MS))
		end := to.UnixMilli()
		if i+1 < len(keys) {
			end = min(end, int64(keys[i+1].MS)-1)
		}
		if start > end {
			continue
		}
		out = append(out, Item{Camera: cam, GOP: len(out), Key: k, Start: time.UnixMilli(start), End: time.UnixMilli(end)})
	}
	return out, nil
}

// Worker takes items of a group and decodes their frames.
type Worker struct {
	Client redis.UniversalClient // the Redis holding the work stream
	Reader *chrysalis.Client     // decodes the frames
	Group  string
	// Consumer names this worker in the group (unique per process).
	Consumer string
	// MinIdle: an item held this long by another consumer without an
	// acknowledgement is claimed (its worker is taken for dead). Default
	// 30 s; it must exceed the time one GOP takes.
	MinIdle time.Duration
	// Poll is how long a read waits for an item. Default 500 ms.
	Poll time.Duration
	// Options for the decoding handles.
	Camera chrysalis.CameraOptions
}

// Run processes items until every item of the group is acknowledged, or
// ctx ends (it returns ctx's error). frame gets each frame of an item in
// order (lent: valid until it returns); done runs when all the item's
// frames were handed over, before the acknowledgement: commit the item's
// output there.
func (w *Worker) Run(ctx context.Context, frame func(Item, *chrysalis.ChImage) error, done func(Item) error) error {
	if w.MinIdle <= 0 {
		w.MinIdle = 30 * time.Second
	}
	if w.Poll <= 0 {
		w.Poll = 500 * time.Millisecond
	}
	stream := StreamKey(w.Group)
	// Wait for the plan.
	for {
		v, err := w.Client.Get(ctx, planKey(w.Group)).Result()
		if err == nil && v != "planning" {
			break
		}
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if errors.Is(err, redis.Nil) {
			return fmt.Errorf("parallel: group %q has no plan", w.Group)
		}
		if !sleep(ctx, w.Poll) {
			return ctx.Err()
		}
	}
	cams := map[string]*chrysalis.Camera{}
	defer func() {
		for _, c := range cams {
			c.Close()
		}
	}()
	for {
		msgs, _, err := w.Client.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: stream, Group: w.Group, Consumer: w.Consumer,
			MinIdle: w.MinIdle, Start: "0-0", Count: 1}).Result()
		if err != nil {
			return ctxErr(ctx, err)
		}
		if len(msgs) == 0 {
			res, err := w.Client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: w.Group, Consumer: w.Consumer,
				Streams: []string{stream, ">"}, Count: 1, Block: w.Poll}).Result()
			switch {
			case errors.Is(err, redis.Nil):
				p, err := w.Client.XPending(ctx, stream, w.Group).Result()
				if err != nil {
					return ctxErr(ctx, err)
				}
				if p.Count == 0 {
					return nil // every item read and acknowledged
				}
				continue // items held by others: claim them once idle
			case err != nil:
				return ctxErr(ctx, err)
			}
			if len(res) > 0 {
				msgs = res[0].Messages
			}
		}
		for _, m := range msgs {
			it, err := parseItem(m)
			if err != nil {
				return err
			}
			cam := cams[it.Camera]
			if cam == nil {
				cam = w.Reader.Camera(it.Camera, w.Camera)
				cams[it.Camera] = cam
			}
			for img, err := range cam.Past(ctx, it.Start, it.End) {
				if err != nil {
					return fmt.Errorf("parallel: %s GOP %d: %w", it.Camera, it.GOP, err)
				}
				err := frame(it, img)
				img.Release()
				if err != nil {
					return err
				}
			}
			if err := done(it); err != nil {
				return err
			}
			if err := w.Client.XAck(ctx, stream, w.Group, m.ID).Err(); err != nil {
				return ctxErr(ctx, err)
			}
		}
	}
}

func parseItem(m redis.XMessage) (Item, error) {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	it := Item{ID: m.ID, Camera: str("camera")}
	gop, err1 := strconv.Atoi(str("gop"))
	key, err2 := cache.ParseID(str("key"))
	start, err3 := strconv.ParseInt(str("start"), 10, 64)
	end, err4 := strconv.ParseInt(str("end"), 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil || it.Camera == "" {
		return Item{}, fmt.Errorf("parallel: bad work item %s: %v", m.ID, err)
	}
	it.GOP, it.Key, it.Start, it.End = gop, key, time.UnixMilli(start), time.UnixMilli(end)
	return it, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Cleanup deletes the group's stream and plan.
func Cleanup(ctx context.Context, rdb redis.UniversalClient, group string) error {
	return errors.Join(rdb.Del(ctx, StreamKey(group)).Err(), rdb.Del(ctx, planKey(group)).Err())
}
