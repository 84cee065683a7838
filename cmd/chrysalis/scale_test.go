package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/chryscloud/chrysalis-go/internal/testx"
	"github.com/chryscloud/chrysalis-go/replay/parallel"
)

// The scale-out tests (issue 14): a real 3-master Redis Cluster and a real
// sentinel failover, driven through the CLI binary.

// shortClip makes a 2 s 320x240 H.264 clip with the ffmpeg CLI: 50
// frames, a keyframe every 10, no B-frames.
func shortClip(t *testing.T) string {
	t.Helper()
	testclip.RequireFFmpeg(t)
	p := filepath.Join(t.TempDir(), "short.mp4")
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25", "-t", "2",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-keyint_min", "10", "-sc_threshold", "0", "-bf", "0",
		"-pix_fmt", "yuv420p", "-y", p).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	return p
}

// cli runs the built command with env and returns stdout, stderr and the
// exit code.
func cli(t *testing.T, ctx context.Context, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, ingestTestBinary(t), args...)
	cmd.Env = append(append(os.Environ(), "CHRYSALIS_REDIS_URL="), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	}
	t.Fatalf("run %v: %v", args, err)
	return "", "", -1
}

// TestClusterIngestAndRead: 16 cameras ingested by 2 ingest processes
// into a 3-master cluster named by its cluster URL, every one read back
// (probe and latest through the CLI, a past window frame-exact through the
// library), with no CROSSSLOT error anywhere.
func TestClusterIngestAndRead(t *testing.T) {
	clip := shortClip(t)
	cl := testredis.StartCluster(t, 3)
	url := cl.URL()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	start := time.Now()

	const ncam = 16
	cams := make([]string, ncam)
	for i := range cams {
		cams[i] = fmt.Sprintf("cluster-cam%02d", i)
	}
	var wg sync.WaitGroup
	errs := make([]string, 2)
	for p := range 2 {
		args := []string{"ingest", "--redis-url", url, "--max-len", "1000"}
		for _, c := range cams[p*ncam/2 : (p+1)*ncam/2] {
			args = append(args, "--camera", c, "--input", clip)
		}
		wg.Go(func() {
			_, stderr, code := cli(t, ctx, nil, args...)
			if code != 0 || strings.Contains(stderr, "CROSSSLOT") || strings.Contains(stderr, "MOVED") {
				errs[p] = fmt.Sprintf("ingest process %d: exit %d\n%s", p, code, stderr)
			}
		})
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			t.Fatal(e)
		}
	}
	t.Logf("ingested in %v", time.Since(start).Round(time.Millisecond))

	// The cameras' keys are spread over every master.
	for _, n := range cl.Nodes {
		rdb := redis.NewClient(&redis.Options{Addr: n.Addr()})
		k, err := rdb.DBSize(ctx).Result()
		rdb.Close()
		if err != nil || k == 0 {
			t.Fatalf("node %s holds %d keys (%v): the cameras should span every master", n.Addr(), k, err)
		}
	}

	ref := testclip.Reference(t, clip, "bgr24", 0, 0)
	if len(ref) != 50 {
		t.Fatalf("reference decode: %d frames, want 50", len(ref))
	}
	client, err := chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: url}, chrysalis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	listed, err := client.Cameras(ctx)
	if err != nil || len(listed) != ncam {
		t.Fatalf("Cameras on the cluster: %v (%v), want %d", listed, err, ncam)
	}
	env := []string{"CHRYSALIS_REDIS_URL=" + url}
	dir := t.TempDir()
	// Each camera read back by the CLI, 4 cameras at a time.
	probes := make([]chrysalis.Probe, ncam)
	fails := make([]string, ncam)
	sem := make(chan struct{}, 4)
	for i, c := range cams {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			stdout, stderr, code := cli(t, ctx, env, "probe", "--camera", c, "--json")
			p := &probes[i]
			if code != 0 || json.Unmarshal([]byte(stdout), p) != nil {
				fails[i] = fmt.Sprintf("probe %s: exit %d: %s", c, code, stderr)
				return
			}
			if p.Frames != 50 || p.Keyframes != 5 || p.Codec != "h264" || p.Width != 320 {
				fails[i] = fmt.Sprintf("probe %s: %+v, want 50 frames, 5 keyframes, h264 320 wide", c, p)
				return
			}
			stdout, stderr, code = cli(t, ctx, env, "latest", "--camera", c, "-o", filepath.Join(dir, c+".jpg"), "--json")
			var r imageResult
			if code != 0 || json.Unmarshal([]byte(stdout), &r) != nil || r.TimestampMS != p.EndMS {
				fails[i] = fmt.Sprintf("latest %s: exit %d %+v (want the frame at %d): %s", c, code, r, p.EndMS, stderr)
			}
		})
	}
	wg.Wait()
	for _, f := range fails {
		if f != "" {
			t.Fatal(f)
		}
	}
	for _, c := range cams {
		// A past window from mid-GOP: packets 15..34, frame-exact.
		pkts, err := client.Cache().Range(ctx, c, cache.MinID, cache.MaxID, 0)
		if err != nil || len(pkts) != 50 {
			t.Fatalf("%s: Range: %d packets, %v", c, len(pkts), err)
		}
		cam := client.Camera(c, chrysalis.CameraOptions{})
		n := 0
		for img, err := range cam.Past(ctx, pkts[15].ID.Time(), pkts[34].ID.Time()) {
			if err != nil {
				t.Fatalf("%s: Past: %v", c, err)
			}
			if img.ID != pkts[15+n].ID || !bytes.Equal(img.Data, ref[15+n]) {
				t.Fatalf("%s: past frame %d is %v, want packet %v equal to ffmpeg's frame %d (PSNR %.1f)", c, n, img.ID, pkts[15+n].ID, 15+n, testclip.PSNR(img.Data, ref[15+n]))
			}
			img.Release()
			n++
		}
		cam.Close()
		if n != 20 {
			t.Fatalf("%s: past window yielded %d frames, want 20", c, n)
		}
	}
	t.Logf("16 cameras ingested by 2 processes and read back in %v", time.Since(start).Round(time.Millisecond))
}

// TestClusterSingleNodeURL: a cluster node named as one server gets the
// one-line hint naming the cluster URL form, from ingest (which stops at
// once instead of dropping every packet) and from probe; exit 2.
func TestClusterSingleNodeURL(t *testing.T) {
	clip := shortClip(t)
	cl := testredis.StartCluster(t, 3)
	single := "redis://" + cl.Nodes[0].Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"ingest", "--redis-url", single, "--max-len", "1000"}
	for i := range 8 {
		args = append(args, "--camera", fmt.Sprintf("c%d", i), "--input", clip)
	}
	_, stderr, code := cli(t, ctx, nil, args...)
	last := lastLine(stderr)
	if code != exitUsage || !strings.Contains(last, "chrysalis: ") || !strings.Contains(last, "?addr=") {
		t.Fatalf("ingest on one cluster node: exit %d, last line %q, want exit %d and the cluster URL hint\n%s", code, last, exitUsage, stderr)
	}
	// Fill the cameras through the cluster, then probe them through one node.
	args[2] = cl.URL()
	if _, stderr, code := cli(t, ctx, nil, args...); code != 0 {
		t.Fatalf("ingest on the cluster: exit %d\n%s", code, stderr)
	}
	hinted := 0
	for i := range 8 {
		_, stderr, code := cli(t, ctx, []string{"CHRYSALIS_REDIS_URL=" + single}, "probe", "--camera", fmt.Sprintf("c%d", i))
		switch {
		case code == 0:
		case code == exitUsage && strings.Count(stderr, "\n") == 1 && strings.Contains(stderr, "MOVED") && strings.Contains(stderr, "?addr="):
			hinted++
		default:
			t.Fatalf("probe c%d on one node: exit %d: %q", i, code, stderr)
		}
	}
	if hinted == 0 {
		t.Fatal("no camera's keys were on another node: the test proves nothing")
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// startCLI starts the built command in the background; it gets SIGINT at
// test cleanup (or stop) and is waited for.
type bgCLI struct {
	cmd    *exec.Cmd
	stderr *testx.SyncBuffer
	done   chan struct{}
	err    error
}

func startCLI(t *testing.T, env []string, args ...string) *bgCLI {
	t.Helper()
	b := &bgCLI{cmd: exec.Command(ingestTestBinary(t), args...), stderr: &testx.SyncBuffer{}, done: make(chan struct{})}
	b.cmd.Env = append(append(os.Environ(), "CHRYSALIS_REDIS_URL="), env...)
	b.cmd.Stderr = b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		b.err = b.cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() { b.stop() })
	return b
}

// stop sends SIGINT and waits (SIGKILL after 10 s).
func (b *bgCLI) stop() error {
	_ = b.cmd.Process.Signal(os.Interrupt)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	return b.err
}

// kill sends SIGKILL and waits.
func (b *bgCLI) kill() {
	_ = b.cmd.Process.Kill()
	<-b.done
}

// TestSentinelFailover: an ingest and a reader on a sentinel URL; the
// master is killed (SIGKILL); the sentinels promote the replica; the
// ingest's writes and the reader's frames carry on, and what is lost is
// only what the dead master acknowledged but had not replicated.
func TestSentinelFailover(t *testing.T) {
	clip := shortClip(t)
	st := testredis.StartSentinels(t, "cams")
	url := st.URL()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ing := startCLI(t, nil, "ingest", "--redis-url", url, "--camera", "fo", "--input", clip, "--realtime", "--loop", "--max-age", "1m")

	client, err := chrysalis.DialRedis(ctx, rediscache.ConnOptions{URL: url}, chrysalis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	cam := client.Camera("fo", chrysalis.CameraOptions{})
	defer cam.Close()
	// latestAfter waits for a frame captured after ms, retrying reads that
	// fail while the master is down.
	latestAfter := func(ms int64) (*chrysalis.ChImage, int) {
		fails := 0
		for ctx.Err() == nil {
			wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
			img, err := cam.WaitLatest(wctx)
			wcancel()
			if err != nil {
				fails++
				select { // the master is down: retry a little later
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
				continue
			}
			if img.TimestampMS() > ms {
				return img, fails
			}
			img.Release()
		}
		t.Fatalf("no frame after %d: %v\ningest:\n%s", ms, ctx.Err(), ing.stderr.String())
		return nil, fails
	}
	first, _ := latestAfter(0)
	first.Release()

	killed := time.Now()
	st.Master.Kill()
	for {
		a, err := st.MasterAddr(ctx)
		if err == nil && a == st.Replica.Addr() {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the sentinels never promoted the replica: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling the sentinels' answer
	}
	promoted := time.Now()
	img, fails := latestAfter(promoted.UnixMilli() + 500)
	resumed := time.Now()
	img.Release()
	t.Logf("failover: promoted %v after the kill; reader got a frame captured after it %v later (%d failed reads)",
		promoted.Sub(killed).Round(10*time.Millisecond), resumed.Sub(promoted).Round(10*time.Millisecond), fails)

	// The ingest never stopped, and lost only what the dead master had
	// acknowledged without replicating it: count the holes in the packet
	// numbers on the new master.
	select {
	case <-ing.done:
		t.Fatalf("the ingest exited during the failover: %v\n%s", ing.err, ing.stderr.String())
	default:
	}
	if err := ing.stop(); err != nil {
		t.Fatalf("ingest: %v\n%s", err, ing.stderr.String())
	}
	pkts, err := client.Cache().Range(ctx, "fo", cache.MinID, cache.MaxID, 0)
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for i := 1; i < len(pkts); i++ {
		if d := pkts[i].Number - pkts[i-1].Number; d != 1 {
			if d < 1 {
				t.Fatalf("packet numbers go back at %v: %d after %d (a packet written twice?)", pkts[i].ID, pkts[i].Number, pkts[i-1].Number)
			}
			missing += int(d - 1)
		}
	}
	t.Logf("failover: %d packets cached, %d lost", len(pkts), missing)
	if missing > 5 {
		t.Fatalf("%d packets lost in the failover, want at most 5 (the writes the dead master had not replicated)", missing)
	}
}

// TestIngestLeases: 2 ingest processes given the same 4 live cameras and
// --lease 2s share them 2 and 2, each camera written by one process; one
// is killed with SIGKILL, and its cameras are ingested by the other
// within the lease time plus one reconnect. The survivor releases its
// leases when it exits.
func TestIngestLeases(t *testing.T) {
	clip := shortClip(t)
	srv, rdb := startRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cams := []string{"la", "lb", "lc", "ld"}
	file := filepath.Join(t.TempDir(), "cameras.txt")
	var list strings.Builder
	list.WriteString("# id input\n")
	for _, c := range cams {
		fmt.Fprintf(&list, "%s %s\n", c, clip)
	}
	if err := os.WriteFile(file, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	const ttl = 2 * time.Second
	args := []string{"ingest", "--redis-url", srv.URL(), "--cameras-file", file, "--realtime", "--loop", "--max-age", "1m", "--lease", ttl.String()}
	procs := []*bgCLI{startCLI(t, nil, args...), startCLI(t, nil, args...)}
	pidOf := func(owner string) int {
		for _, p := range procs {
			if strings.Contains(owner, fmt.Sprintf("-%d-", p.cmd.Process.Pid)) {
				return p.cmd.Process.Pid
			}
		}
		return 0
	}
	holders := func() map[string]int { // camera -> pid
		m := map[string]int{}
		for _, c := range cams {
			if h, _ := rdb.Get(ctx, "chrysalis:lease:"+c).Result(); h != "" {
				m[c] = pidOf(h)
			}
		}
		return m
	}
	// lastMS is the newest packet's capture time of cam (0: none).
	lastMS := func(cam string) int64 {
		m, err := rdb.XRevRangeN(ctx, rediscache.QueueKey(cam), "+", "-", 1).Result()
		if err != nil || len(m) == 0 {
			return 0
		}
		id, _ := cache.ParseID(m[0].ID)
		return int64(id.MS)
	}
	wait := func(what string, d time.Duration, ok func() bool) time.Duration {
		start := time.Now()
		for !ok() {
			if time.Since(start) > d {
				t.Fatalf("%s: not within %v\nprocess 1:\n%s\nprocess 2:\n%s", what, d, procs[0].stderr.String(), procs[1].stderr.String())
			}
			select { // polling Redis
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
		return time.Since(start)
	}
	// Balanced: 2 cameras each, every camera written recently.
	wait("2 cameras per process, all written", 20*time.Second, func() bool {
		h := holders()
		n := map[int]int{}
		for _, pid := range h {
			n[pid]++
		}
		if len(h) != 4 || n[procs[0].cmd.Process.Pid] != 2 || n[procs[1].cmd.Process.Pid] != 2 {
			return false
		}
		now := time.Now().UnixMilli()
		for _, c := range cams {
			if now-lastMS(c) > 500 {
				return false
			}
		}
		return true
	})
	before := holders()
	victim := procs[0]
	var victimCams []string
	for c, pid := range before {
		if pid == victim.cmd.Process.Pid {
			victimCams = append(victimCams, c)
		}
	}
	// Steady state for a second: no camera written by two processes
	// (two writers would interleave two packet numberings).
	mark := time.Now()
	wait("a second of steady state", 5*time.Second, func() bool { return time.Since(mark) > time.Second })
	rc := rediscache.New(rdb, rediscache.Options{})
	for _, c := range cams {
		pkts, err := rc.Range(ctx, c, cache.ID{MS: uint64(mark.UnixMilli())}, cache.MaxID, 0)
		if err != nil || len(pkts) < 10 {
			t.Fatalf("camera %s: %d packets in the last second: %v", c, len(pkts), err)
		}
		for i := 1; i < len(pkts); i++ {
			if pkts[i].Number <= pkts[i-1].Number {
				t.Fatalf("camera %s: packet %d after %d: two writers?", c, pkts[i].Number, pkts[i-1].Number)
			}
		}
	}

	killed := time.Now()
	victim.kill()
	took := wait("the survivor ingests the dead process's cameras", ttl+ttl/4+5*time.Second, func() bool {
		h := holders()
		for _, c := range victimCams {
			if h[c] != procs[1].cmd.Process.Pid || lastMS(c) < killed.UnixMilli()+100 {
				return false
			}
		}
		return true
	})
	t.Logf("cameras %v of the killed process written again by the other %v after the SIGKILL (lease %v)", victimCams, took.Round(10*time.Millisecond), ttl)
	if err := procs[1].stop(); err != nil {
		t.Fatalf("survivor: %v\n%s", err, procs[1].stderr.String())
	}
	if h := holders(); len(h) != 0 {
		t.Fatalf("leases left after the survivor exited: %v", h)
	}
}

// TestIngestCamerasFromRedis: the camera list is a hash in Redis, re-read
// while running: a camera added is ingested, a camera removed is stopped
// and its lease released.
func TestIngestCamerasFromRedis(t *testing.T) {
	clip := shortClip(t)
	srv, rdb := startRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := rdb.HSet(ctx, "chrysalis:cameras", "ra", clip, "rb", clip).Err(); err != nil {
		t.Fatal(err)
	}
	p := startCLI(t, nil, "ingest", "--redis-url", srv.URL(), "--cameras-from", "redis", "--lease", "1s", "--realtime", "--loop", "--max-age", "1m")
	recent := func(cam string) bool {
		m, err := rdb.XRevRangeN(ctx, rediscache.QueueKey(cam), "+", "-", 1).Result()
		if err != nil || len(m) == 0 {
			return false
		}
		id, _ := cache.ParseID(m[0].ID)
		return time.Now().UnixMilli()-int64(id.MS) < 300
	}
	held := func(cam string) bool { return rdb.Exists(ctx, "chrysalis:lease:"+cam).Val() == 1 }
	wait := func(what string, ok func() bool) {
		start := time.Now()
		for !ok() {
			if time.Since(start) > 15*time.Second {
				t.Fatalf("%s: not within 15 s\n%s", what, p.stderr.String())
			}
			select { // polling Redis
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	wait("ra and rb ingested", func() bool { return recent("ra") && recent("rb") && held("ra") && held("rb") })
	rdb.HDel(ctx, "chrysalis:cameras", "rb")
	rdb.HSet(ctx, "chrysalis:cameras", "rc", clip)
	wait("rc ingested, rb stopped and released", func() bool { return recent("rc") && !held("rb") && !recent("rb") && recent("ra") })
	if err := p.stop(); err != nil {
		t.Fatalf("ingest: %v\n%s", err, p.stderr.String())
	}
	if held("ra") || held("rc") {
		t.Fatal("leases left after exit")
	}
}

// TestReplayWorkersKill: a past window of 3 cameras (30 GOPs) decoded by 3
// worker processes sharing a consumer group; one is killed with SIGKILL
// midway; the union of the workers' outputs holds every frame of the
// window exactly once.
func TestReplayWorkersKill(t *testing.T) {
	clip := filepath.Join(t.TempDir(), "replay.mp4")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=25", "-t", "4",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-keyint_min", "10", "-sc_threshold", "0", "-bf", "0",
		"-pix_fmt", "yuv420p", "-y", clip).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	srv, rdb := startRedis(t)
	c := testclip.Load(t, clip)
	cams := []string{"r1", "r2", "r3"}
	t0 := time.Now().Add(-time.Hour).UnixMilli()
	want := map[string]int{}
	for _, cam := range cams {
		c.WriteRedis(t, rdb, cam, t0, 40)
		for i := 5; i <= 94; i++ { // the window: mid-GOP to mid-GOP
			want[fmt.Sprintf("%s %d-0", cam, t0+int64(i)*40)] = 0
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	args := []string{"replay", "--redis-url", srv.URL(), "--from", fmt.Sprint(t0 + 5*40), "--to", fmt.Sprint(t0 + 94*40),
		"--group", "g1", "--out", dir, "--claim-after", "1s", "--frame-delay", "15ms"}
	for _, cam := range cams {
		args = append(args, "--camera", cam)
	}
	var procs []*bgCLI
	for range 3 {
		procs = append(procs, startCLI(t, nil, args...))
	}
	lines := func() []string {
		var all []string
		files, _ := filepath.Glob(filepath.Join(dir, "*.frames"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			all = append(all, strings.Split(strings.TrimSpace(string(b)), "\n")...)
		}
		return slices.DeleteFunc(all, func(s string) bool { return s == "" })
	}
	// Kill one worker once a third of the frames are out.
	for len(lines()) < len(want)/3 {
		select {
		case <-ctx.Done():
			t.Fatalf("workers stalled at %d frames:\n%s", len(lines()), procs[0].stderr.String())
		case <-time.After(20 * time.Millisecond): // polling the output files
		}
	}
	select {
	case <-procs[0].done:
		t.Fatalf("worker 0 ended before it was killed: %v\n%s", procs[0].err, procs[0].stderr.String())
	default:
	}
	pend, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: parallel.StreamKey("g1"), Group: "g1", Start: "-", End: "+", Count: 100}).Result()
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, p := range pend {
		if strings.HasSuffix(p.Consumer, fmt.Sprintf("-%d", procs[0].cmd.Process.Pid)) {
			held++
		}
	}
	procs[0].kill()
	t.Logf("killed worker 0 holding %d item(s), with %d frames out", held, len(lines()))
	for i, p := range procs[1:] {
		select {
		case <-p.done:
		case <-ctx.Done():
			t.Fatalf("worker %d did not finish", i+1)
		}
		if p.err != nil {
			t.Fatalf("worker %d: %v\n%s", i+1, p.err, p.stderr.String())
		}
	}
	got := lines()
	for _, l := range got {
		n, ok := want[l]
		if !ok {
			t.Fatalf("a frame outside the window: %q", l)
		}
		if n == 1 {
			t.Fatalf("frame %q twice", l)
		}
		want[l] = 1
	}
	for l, n := range want {
		if n == 0 {
			t.Fatalf("frame %q missing (%d of %d frames out)", l, len(got), len(want))
		}
	}
	if n, _ := rdb.XPending(ctx, parallel.StreamKey("g1"), "g1").Result(); n.Count != 0 {
		t.Fatalf("%d items still pending", n.Count)
	}
	t.Logf("%d frames of 30 GOPs, each once, from 3 workers with one killed", len(got))
}

// TestReplayLocalWorkers: --workers 2 plans, starts 2 local workers and
// returns when the window is done, every frame once.
func TestReplayLocalWorkers(t *testing.T) {
	srv, rdb := startRedis(t)
	t0 := time.Now().Add(-time.Hour).UnixMilli()
	testclip.Load(t, "clip720.mp4").WriteRedis(t, rdb, "lw", t0, 40) // 100 frames, keyframes at 0 and 50
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	_, stderr, code := cli(t, ctx, nil, "replay", "--redis-url", srv.URL(), "--camera", "lw", "--from", fmt.Sprint(t0+20*40),
		"--to", fmt.Sprint(t0+79*40), "--workers", "2", "--out", dir)
	if code != 0 {
		t.Fatalf("replay --workers 2: exit %d\n%s", code, stderr)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.frames"))
	seen := map[string]bool{}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, l := range strings.Fields(strings.ReplaceAll(string(b), "lw ", "")) {
			if seen[l] {
				t.Fatalf("frame %s twice", l)
			}
			seen[l] = true
		}
	}
	if len(seen) != 60 || !seen[fmt.Sprintf("%d-0", t0+20*40)] || !seen[fmt.Sprintf("%d-0", t0+79*40)] {
		t.Fatalf("%d frames from %d workers, want packets 20..79", len(seen), len(files))
	}
}
