package ingest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/ingest"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/chryscloud/chrysalis-go/internal/testx"
)

// pushOnce runs one ffmpeg push of path to url (re-launched while the
// listener is not up yet) and returns its error.
func pushOnce(t *testing.T, path, url string) error {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var stderr bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
			"-re", "-i", path, "-c", "copy", "-f", "flv", url)
		cmd.Stderr = &stderr
		err := cmd.Run()
		cancel()
		if err == nil || !strings.Contains(stderr.String(), "Connection refused") || time.Now().After(deadline) {
			if err != nil {
				err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
			}
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A listener on /live/push1 with a stream key accepts only a push to
// /live/push1?key=KEY. Pushes to another app, stream or key (the issue's
// /evil/wrongkey at another size), a client that sends nothing and one
// that sends random bytes are refused with a log line each, counted, and
// leave the cache and the codec untouched; the right push is then taken
// whole.
func TestRTMPListenRefusesOtherPaths(t *testing.T) {
	requireFFmpeg(t)
	srv := testredis.Start(t, testredis.Options{})
	rc := dialRedis(t, srv, cache.Retention{MaxAge: 5 * time.Minute})
	const cam, key = "push1", "k3y-sekrit"
	port := testx.FreePort(t)
	base := fmt.Sprintf("rtmp://127.0.0.1:%d", port)
	var logs testx.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	in, err := ingest.New(rc, ingest.Config{Camera: cam, Input: base + "/live/push1", Listen: true, StreamKey: key,
		ReadTimeout: 2 * time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	start(t, in)
	ctx := context.Background()
	small := clip("clip1080.mp4") // another size: it would change the codec
	refusals := int64(0)
	for _, tc := range []struct{ name, path string }{
		{"wrong app and stream", "/evil/wrongkey"},
		{"wrong stream", "/live/push2?key=" + key},
		{"no key", "/live/push1"},
		{"wrong key", "/live/push1?key=nope"},
		{"key prefix", "/live/push1?key=k3y"},
	} {
		err := pushOnce(t, small, base+tc.path)
		refusals++
		t.Logf("%s: push %s: %v", tc.name, tc.path, err)
		if err == nil {
			t.Errorf("%s: push to %s succeeded", tc.name, tc.path)
		}
		waitFor(t, 10*time.Second, "the refusal counted", func() bool { return in.Stats().Refused >= refusals })
	}
	// A client that connects and sends nothing, and one that sends junk.
	silent, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	junk, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4096)
	rand.Read(b)
	b[0] = 3 // looks like RTMP version 3; the rest is noise
	junk.Write(b)
	refusals += 2
	waitFor(t, 15*time.Second, "the silent and the junk client refused", func() bool { return in.Stats().Refused >= refusals })
	junk.Close()
	if n, _ := rc.Client().XLen(ctx, rediscache.QueueKey(cam)).Result(); n != 0 {
		t.Fatalf("refused pushes wrote %d packets", n)
	}
	if _, err := rc.Codec(ctx, cam); err == nil {
		t.Fatalf("refused pushes set the camera's codec")
	}
	out := logs.String()
	for _, want := range []string{"wrong app", "wrong stream name or key", "bad handshake"} {
		if !strings.Contains(out, "refused a client: "+want) {
			t.Errorf("no log line %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "key=nope") || strings.Contains(out, key) {
		t.Errorf("a stream key reached the log:\n%s", out)
	}

	// The right push, whole.
	path := clip("clip720.mp4")
	want, _ := probeCounts(t, path)
	if err := pushOnce(t, path, base+"/live/push1?key="+key); err != nil {
		t.Fatal(err)
	}
	if n := settle(t, rc, cam, int64(want)); n != int64(want) {
		t.Fatalf("the right push: XLEN %d, want %d", n, want)
	}
	cd, err := rc.Codec(ctx, cam)
	if err != nil || cd.Width != 1280 || cd.Name != "h264" {
		t.Fatalf("codec %+v %v", cd, err)
	}
	t.Logf("stats %+v", in.Stats())
}
