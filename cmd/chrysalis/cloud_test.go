package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
)

// TestCloudLayoutCLI: the read commands take --layout and --stream-key
// and read a cache in the Chrysalis Cloud layout written by raw XADDs
// (probe, snapshot, export to MP4); a bad --layout is a usage error.
func TestCloudLayoutCLI(t *testing.T) {
	srv, rdb := startRedis(t)
	testclip.LoadAnnexB(t, "clip720.mp4").WriteCloud(t, rdb, "node_cam7", clipT0, 40)
	env := "CHRYSALIS_REDIS_URL=" + srv.URL()
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(ingestTestBinary(t), args...)
		cmd.Env = append(os.Environ(), env)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return string(out)
	}
	cloud := []string{"--camera", "cam7", "--layout", "cloud", "--stream-key", "node_{camera}"}
	var p chrysalis.Probe
	if err := json.Unmarshal([]byte(run(append([]string{"probe", "--json"}, cloud...)...)), &p); err != nil {
		t.Fatal(err)
	}
	if p.Frames != 100 || p.StartMS != clipT0 || p.EndMS != clipT0+99*40 || p.Codec != "h264" || p.Width != 1280 || p.Height != 720 {
		t.Fatalf("probe --layout cloud: %+v", p)
	}
	var r imageResult
	json.Unmarshal([]byte(run(append([]string{"snapshot", "--at", strconv.FormatInt(clipT0+70*40, 10), "-o", filepath.Join(dir, "s.png"), "--json"}, cloud...)...)), &r)
	if r.TimestampMS != clipT0+50*40 || !r.Keyframe {
		t.Fatalf("snapshot: %+v, want the keyframe at entry 50", r)
	}
	var e exportResult
	json.Unmarshal([]byte(run(append([]string{"export", "--from", strconv.FormatInt(clipT0+60*40, 10), "--to",
		strconv.FormatInt(clipT0+89*40, 10), "-o", filepath.Join(dir, "e.mp4"), "--json"}, cloud...)...)), &e)
	if e.Frames != 40 || e.StartMS != clipT0+50*40 || e.EndMS != clipT0+89*40 {
		t.Fatalf("export: %+v, want entries 50..89", e)
	}
	info := testclip.Probe(t, filepath.Join(dir, "e.mp4"))
	if info.Frames != 40 || info.Codec != "h264" || info.Width != 1280 {
		t.Fatalf("exported MP4: %+v, want 40 h264 frames", info)
	}
	// Frame-exact: the MP4's frames are ffmpeg's decode of packets 50..89.
	ref := testclip.Reference(t, "clip720.mp4", "bgr24", 0, 0)
	got := testclip.Reference(t, filepath.Join(dir, "e.mp4"), "bgr24", 0, 0)
	if len(got) != 40 {
		t.Fatalf("exported MP4 decodes to %d frames", len(got))
	}
	for i := range got {
		if ps := testclip.PSNR(got[i], ref[50+i]); ps < 40 {
			t.Fatalf("exported frame %d: PSNR %.1f vs clip frame %d", i, ps, 50+i)
		}
	}
	// Without the key the camera is not found in either layout.
	code, stderr, _ := runIngestCLI(t, t.Context(), []string{"probe", "--camera", "cam7"}, env)
	if code != exitNotFound || !strings.Contains(stderr, "unknown camera") {
		t.Fatalf("probe without --stream-key: exit %d %s", code, stderr)
	}
	code, stderr, _ = runIngestCLI(t, t.Context(), []string{"probe", "--camera", "cam7", "--layout", "sdk"}, env)
	if code != exitUsage || !strings.Contains(stderr, "bad --layout") {
		t.Fatalf("probe --layout sdk: exit %d %s", code, stderr)
	}
}

// TestCloudLayoutCLIIngest: `ingest --layout cloud --stream-key` writes
// the cloud layout (frame fields only, Annex B), which probe then reads
// with the layout given and detected.
func TestCloudLayoutCLIIngest(t *testing.T) {
	srv, rdb := startRedis(t)
	env := "CHRYSALIS_REDIS_URL=" + srv.URL()
	code, stderr, _ := runIngestCLI(t, t.Context(), []string{"ingest", "--camera", "lobby", "--input", testclip.Path("clip720.mp4"),
		"--layout", "cloud", "--stream-key", "cams_{camera}"}, env)
	if code != 0 {
		t.Fatalf("ingest: exit %d: %s", code, stderr)
	}
	msgs, err := rdb.XRange(t.Context(), "cams_lobby", "-", "+").Result()
	if err != nil || len(msgs) != 100 {
		t.Fatalf("cams_lobby: %d entries, err %v", len(msgs), err)
	}
	if f, _ := msgs[0].Values["frame"].(string); len(msgs[0].Values) != 1 || !strings.HasPrefix(f, "\x00\x00\x00\x01") {
		t.Fatalf("first entry %q... is not an Annex B frame field", f[:min(8, len(f))])
	}
	if n, _ := rdb.Exists(t.Context(), "in_memory_queue_lobby", "codec_video_infolobby").Result(); n != 0 {
		t.Fatalf("the cloud ingest wrote %d edge keys", n)
	}
	for _, layout := range [][]string{{"--layout", "cloud"}, nil} {
		cmd := exec.Command(ingestTestBinary(t), append([]string{"probe", "--camera", "lobby", "--stream-key", "cams_{camera}", "--json"}, layout...)...)
		cmd.Env = append(os.Environ(), env)
		out, err := cmd.Output()
		var p chrysalis.Probe
		if err != nil || json.Unmarshal(out, &p) != nil || p.Frames != 100 || p.Codec != "h264" || p.Width != 1280 {
			t.Fatalf("probe %v: %v %s", layout, err, out)
		}
	}
}

// TestCloudLayoutWatch: the watch server reads a cloud-layout cache
// (probe and screenshot through its API) when given --layout and
// --stream-key.
func TestCloudLayoutWatch(t *testing.T) {
	srv, rdb := startRedis(t)
	testclip.LoadAnnexB(t, "clip720.mp4").WriteCloud(t, rdb, "node_gate", clipT0, 40)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ingestTestBinary(t), "watch", "--camera", "gate", "--http", "127.0.0.1:0", "--redis-url", srv.URL(),
		"--layout", "cloud", "--stream-key", "node_{camera}")
	cmd.Env = append(os.Environ(), "CHRYSALIS_REDIS_URL=")
	stdout, stderr := startPiped(t, cmd)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	i := strings.Index(line, "http://")
	if err != nil || i < 0 {
		t.Fatalf("no URL printed: %v %q; stderr %s", err, line, stderr.String())
	}
	base := strings.TrimSuffix(strings.Fields(line[i:])[0], "/")
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, body := get("/api/probe/gate")
	var p chrysalis.Probe
	if err := json.Unmarshal(body, &p); code != 200 || err != nil || p.Frames != 100 || p.Codec != "h264" || p.Width != 1280 {
		t.Fatalf("probe: %d %s", code, body)
	}
	if code, body := get("/api/screenshot/gate?at=" + strconv.FormatInt(clipT0+70*40, 10)); code != 200 || len(body) < 1000 {
		t.Fatalf("screenshot: %d, %d bytes", code, len(body))
	}
}
