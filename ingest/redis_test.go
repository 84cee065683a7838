package ingest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/ingest"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

// sample is one atomic look at a camera's queue stream.
type sample struct {
	n           int64
	first, last cache.ID
}

func takeSample(ctx context.Context, rdb redis.UniversalClient, cam string) (sample, error) {
	pipe := rdb.TxPipeline() // MULTI/EXEC: the three reads see one state
	n := pipe.XLen(ctx, rediscache.QueueKey(cam))
	f := pipe.XRangeN(ctx, rediscache.QueueKey(cam), "-", "+", 1)
	l := pipe.XRevRangeN(ctx, rediscache.QueueKey(cam), "+", "-", 1)
	if _, err := pipe.Exec(ctx); err != nil {
		return sample{}, err
	}
	s := sample{n: n.Val()}
	if len(f.Val()) == 1 && len(l.Val()) == 1 {
		s.first, _ = cache.ParseID(f.Val()[0].ID)
		s.last, _ = cache.ParseID(l.Val()[0].ID)
	}
	return s, nil
}

// sampler records queue samples every few ms until stopped.
type sampler struct {
	mu      sync.Mutex
	samples []sample
	stop    chan struct{}
	done    chan struct{}
}

func startSampler(t testing.TB, rdb redis.UniversalClient, cam string) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			sm, err := takeSample(context.Background(), rdb, cam)
			if err != nil {
				continue
			}
			s.mu.Lock()
			s.samples = append(s.samples, sm)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.halt)
	return s
}

func (s *sampler) halt() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// TestRetentionBoundDuringLongRun: XLEN never exceeds the retention bound,
// sampled every ~5ms during a long run and at the end.
func TestRetentionBoundDuringLongRun(t *testing.T) {
	requireFFmpeg(t)
	srv := testredis.Start(t, testredis.Options{})

	t.Run("MaxLen50", func(t *testing.T) {
		const cam, bound = "maxlen", 50
		rc := dialRedis(t, srv, cache.Retention{MaxLen: bound})
		in, err := ingest.New(rc, ingest.Config{Camera: cam, Input: clip("clip720.mp4"), Loop: true, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		s := startSampler(t, rc.Client(), cam)
		t0 := time.Now()
		r := start(t, in)
		waitFor(t, 30*time.Second, "3000 packets written", func() bool { return in.Stats().Written >= 3000 })
		if err, _ := r.stop(t); err != nil {
			t.Fatal(err)
		}
		s.halt()
		st := in.Stats()
		end, err := takeSample(context.Background(), rc.Client(), cam)
		if err != nil {
			t.Fatal(err)
		}
		maxN := int64(0)
		for _, sm := range s.samples {
			maxN = max(maxN, sm.n)
		}
		t.Logf("%d packets written in %v (%d loops); %d samples, max XLEN %d, final XLEN %d",
			st.Written, time.Since(t0).Round(time.Millisecond), st.Loops, len(s.samples), maxN, end.n)
		if len(s.samples) < 20 {
			t.Fatalf("only %d samples", len(s.samples))
		}
		if maxN > bound || end.n != bound {
			t.Fatalf("XLEN max %d, final %d; want <= %d and == %d at the end", maxN, end.n, bound, bound)
		}
		// The keyframe index follows the queue's span: rediscache trims it
		// when a keyframe is appended, so at most the one entry whose
		// keyframe has just been trimmed away may precede the queue.
		idx, err := rc.Client().XRange(context.Background(), rediscache.IndexKey(cam), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		stale := 0
		for _, e := range idx {
			if id, _ := cache.ParseID(e.ID); id.MS < end.first.MS {
				stale++
			}
		}
		if len(idx) > 3 || stale > 1 {
			t.Errorf("index holds %d entries, %d before the queue's first entry %v", len(idx), stale, end.first)
		}
	})

	t.Run("MaxAge1sRealtime", func(t *testing.T) {
		const cam = "maxage"
		rc := dialRedis(t, srv, cache.Retention{MaxAge: time.Second})
		in, err := ingest.New(rc, ingest.Config{Camera: cam, Input: clip("clip720.mp4"), Realtime: true, Loop: true,
			Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		s := startSampler(t, rc.Client(), cam)
		r := start(t, in)
		// 3 s of packets (a condition: the pacing starts later on a busy
		// machine).
		waitFor(t, 15*time.Second, "75 packets written", func() bool { return in.Stats().Written >= 75 })
		if err, _ := r.stop(t); err != nil {
			t.Fatal(err)
		}
		s.halt()
		st := in.Stats()
		end, err := takeSample(context.Background(), rc.Client(), cam)
		if err != nil {
			t.Fatal(err)
		}
		var maxN int64
		var maxSpan time.Duration
		for _, sm := range append(s.samples, end) {
			maxN = max(maxN, sm.n)
			maxSpan = max(maxSpan, time.Duration(sm.last.MS-sm.first.MS)*time.Millisecond)
		}
		t.Logf("%d packets written; %d samples, max XLEN %d, max first..last span %v; final XLEN %d",
			st.Written, len(s.samples), maxN, maxSpan, end.n)
		// 25 fps: a 1 s window holds about 26 packets.
		if st.Written < 60 || maxSpan > time.Second || maxN > 30 || end.n < 20 {
			t.Fatalf("written %d, max span %v, max XLEN %d, final %d: want >= 60 written, span <= 1s, XLEN <= 30",
				st.Written, maxSpan, maxN, end.n)
		}
	})
}

// outage ingests clip1080 in real time (one 4 s pass) into a persistent
// Redis that is killed for about a second mid-run. Run returns at the end of
// the file after flushing.
func outage(t *testing.T, buffer time.Duration) (xlen int64, st ingest.Stats) {
	t.Helper()
	requireFFmpeg(t)
	srv := testredis.Start(t, testredis.Options{Persist: true})
	const cam = "outage"
	rc := dialRedis(t, srv, cache.Retention{MaxAge: 5 * time.Minute})
	in, err := ingest.New(rc, ingest.Config{Camera: cam, Input: clip("clip1080.mp4"), Realtime: true, Buffer: buffer,
		Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, in)
	waitFor(t, 10*time.Second, "25 packets written", func() bool { return in.Stats().Written >= 25 })
	srv.Kill()
	killed := time.Now()
	atKill := in.Stats()
	// Down for 1 s of packets read.
	waitFor(t, 10*time.Second, "25 packets read while Redis is down", func() bool { return in.Stats().Packets >= atKill.Packets+25 })
	atRestart := in.Stats()
	srv.Restart()
	t.Logf("redis down for %v; at kill %d written, at restart %d read / %d written / %d buffered / %d dropped",
		time.Since(killed).Round(time.Millisecond), atKill.Written, atRestart.Packets, atRestart.Written, atRestart.Buffered, atRestart.Dropped)
	if err := r.wait(t, 20*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st = in.Stats()
	xlen, err = rc.Client().XLen(context.Background(), rediscache.QueueKey(cam)).Result()
	if err != nil {
		t.Fatal(err)
	}
	all, err := rc.Range(context.Background(), cam, cache.MinID, cache.MaxID, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkIDs(t, all)
	for i := 1; i < len(all); i++ {
		if all[i].Number <= all[i-1].Number {
			t.Fatalf("packet numbers out of order at %d: %d after %d", i, all[i].Number, all[i-1].Number)
		}
	}
	t.Logf("buffer %v: XLEN %d; stats %+v", buffer, xlen, st)
	// The outage was felt: nothing (but maybe one in-flight packet) was
	// written while Redis was down, and packets piled up or were dropped.
	if atRestart.Written > atKill.Written+1 || atRestart.Buffered+atRestart.Dropped < 10 {
		t.Fatalf("the outage was not felt: at kill %+v, at restart %+v", atKill, atRestart)
	}
	return xlen, st
}

// TestRedisOutage: with a 60 s buffer, a ~1 s Redis outage loses nothing
// (XLEN == packets read); with a 200 ms buffer the oldest packets are
// dropped and counted (XLEN == packets read - dropped).
func TestRedisOutage(t *testing.T) {
	t.Run("Buffer60sNothingLost", func(t *testing.T) {
		xlen, st := outage(t, 60*time.Second)
		if st.Packets != 100 || st.Dropped != 0 || xlen != st.Packets || st.Written != st.Packets {
			t.Fatalf("XLEN %d, stats %+v: want 100 packets, nothing dropped", xlen, st)
		}
	})
	t.Run("Buffer200msDrops", func(t *testing.T) {
		xlen, st := outage(t, 200*time.Millisecond)
		if st.Packets != 100 || st.Dropped == 0 || xlen != st.Packets-st.Dropped || st.Written != xlen {
			t.Fatalf("XLEN %d, stats %+v: want drops and XLEN == packets - dropped", xlen, st)
		}
	})
}
