package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/internal/testredis"
	"github.com/chryscloud/chrysalis-go/internal/testx"
)

// No password reaches the terminal: --help defaults taken from the
// environment, Redis URLs in errors, camera URLs (parsable or not, with
// '@', '#', '%' in the password, or a ?token=) in the ingest's log.
func TestCLINeverPrintsPasswords(t *testing.T) {
	const pw = "S3cr3tPW"
	env := "CHRYSALIS_REDIS_URL=redis://:" + pw + "@127.0.0.1:1/0"
	for _, cmd := range []string{"ingest", "probe", "latest", "snapshot", "export", "watch", "demo", "version"} {
		c := exec.Command(ingestTestBinary(t), cmd, "--help")
		c.Env = append(os.Environ(), env)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%s --help: %v", cmd, err)
		}
		if strings.Contains(string(out), pw) {
			t.Errorf("%s --help shows the password:\n%s", cmd, out)
		}
		if !strings.Contains(string(out), `redis://:xxxxx@127.0.0.1:1/0`) {
			t.Errorf("%s --help does not show the masked default", cmd)
		}
	}

	checkFailures(t, []cliFailure{
		{"at in password", []string{"probe", "--camera", "cam", "--redis-url", "redis://:p@ssw0rd@127.0.0.1:1"}, "", exitCache, "unreachable"},
		{"bad url with password", []string{"probe", "--camera", "cam", "--redis-url", "http://:p@ssw0rd@x"}, "", exitUsage, "http://:xxxxx@x"},
	})
	for _, args := range [][]string{
		{"probe", "--camera", "cam", "--redis-url", "redis://:p@ssw0rd@127.0.0.1:1"},
		{"probe", "--camera", "cam", "--redis-url", "http://:p@ssw0rd@x"},
	} {
		_, stderr, _ := runIngestCLI(t, context.Background(), args)
		if strings.Contains(stderr, "ssw0rd") {
			t.Errorf("%v: stderr shows the password: %s", args, stderr)
		}
	}

	srv := testredis.Start(t, testredis.Options{})
	for _, tc := range []struct{ input, secret string }{
		{"rtsp://admin:Pa%ss99@127.0.0.1:1/stream", "Pa%ss99"}, // does not parse
		{"rtsp://admin:p@ss#99@127.0.0.1:1/stream", "ss#99"},
		{"rtmp://127.0.0.1:1/live/cam?token=T0k3nValue", "T0k3nValue"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		c := exec.CommandContext(ctx, ingestTestBinary(t), "ingest", "--redis-url", srv.URL(), "--camera", "c", "--input", tc.input,
			"--read-timeout", "1s", "-v")
		c.Env = append(os.Environ(), "CHRYSALIS_REDIS_URL=")
		var stderr testx.SyncBuffer
		c.Stderr = &stderr
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for the failed connection to be logged, then stop.
		for !strings.Contains(stderr.String(), "reconnecting") && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		c.Process.Signal(syscall.SIGINT)
		c.Wait()
		cancel()
		out := stderr.String()
		t.Logf("%s:\n%s", tc.input, out)
		if !strings.Contains(out, "reconnecting") {
			t.Errorf("%s: the failed connection was not logged", tc.input)
		}
		if strings.Contains(out, tc.secret) {
			t.Errorf("%s: the log shows the secret %q", tc.input, tc.secret)
		}
	}
}
