package main

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// startWatch runs `chrysalis watch` with args and env until the test ends
// and returns the page URL it printed.
func startWatch(t *testing.T, args []string, env ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, ingestTestBinary(t), append([]string{"watch"}, args...)...)
	cmd.Env = append(os.Environ(), "CHRYSALIS_REDIS_URL=", watchTokenEnv+"=")
	cmd.Env = append(cmd.Env, env...)
	stdout, stderr := startPiped(t, cmd)
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		t.Logf("watch stderr: %s", stderr.String())
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("no URL printed: %v", err)
	}
	i := strings.Index(line, "http://")
	if i < 0 {
		t.Fatalf("no URL in %q", line)
	}
	return strings.Fields(line[i:])[0]
}

// status GETs base+path with the Host header (unless empty) and headers.
func status(t *testing.T, base, path, host string, hdr ...string) int {
	t.Helper()
	req, err := http.NewRequest("GET", strings.TrimSuffix(base, "/")+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// DNS rebinding and the token through the CLI: Host not loopback, the
// bound address or --allow-host is 421; the token from the environment is
// required (401 without); --help never shows it.
func TestWatchCLIHostAndToken(t *testing.T) {
	srv := redisWithClip(t)
	const token = "tok-3141592653"
	base := startWatch(t, []string{"--camera", "cam", "--http", "127.0.0.1:0", "--redis-url", srv.URL(), "--allow-host", "cams.lan"},
		watchTokenEnv+"="+token)
	if strings.Contains(base, token) {
		t.Errorf("the page URL %s shows a token the user chose", base) // they know it; printing it would leak it into logs of scripts
	}
	bearer := []string{"Authorization", "Bearer " + token}
	for _, tc := range []struct {
		name, path, host string
		hdr              []string
		code             int
	}{
		{"no token", "/api/probe/cam", "", nil, 401},
		{"bearer", "/api/probe/cam", "", bearer, 200},
		{"query", "/?token=" + url.QueryEscape(token), "", nil, 200},
		{"screenshot", "/api/screenshot/cam?at=1760000002000", "", bearer, 200},
		{"allowed name", "/api/probe/cam", "cams.lan", bearer, 200},
		{"localhost", "/api/probe/cam", "localhost", bearer, 200},
		{"rebound name", "/api/screenshot/cam?at=1760000002000", "attacker.example", bearer, 421},
		{"rebound name, export", "/api/export/cam?last=1s", "attacker.example", bearer, 421},
	} {
		if code := status(t, base, tc.path, tc.host, tc.hdr...); code != tc.code {
			t.Errorf("%s: GET %s (Host %q): %d, want %d", tc.name, tc.path, tc.host, code, tc.code)
		}
	}
	out, err := exec.Command(ingestTestBinary(t), "watch", "--help").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ingestTestBinary(t), "watch", "--help")
	cmd.Env = append(os.Environ(), watchTokenEnv+"="+token)
	if out, err = cmd.CombinedOutput(); err != nil || strings.Contains(string(out), token) {
		t.Errorf("watch --help with %s set: %v, shows the token: %v", watchTokenEnv, err, strings.Contains(string(out), token))
	}
}

// Bound beyond loopback with no token, watch makes one up and prints it
// in the page URL; requests without it get 401.
func TestWatchCLIBeyondLoopbackNeedsToken(t *testing.T) {
	srv := redisWithClip(t)
	base := startWatch(t, []string{"--camera", "cam", "--http", "0.0.0.0:0", "--redis-url", srv.URL()})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	token := u.Query().Get("token")
	t.Logf("page %s", base)
	if len(token) < 32 {
		t.Fatalf("page URL %s carries no token of 128 bits", base)
	}
	root := u.Scheme + "://" + u.Host
	if code := status(t, root, "/api/probe/cam", ""); code != 401 {
		t.Errorf("without the token: %d, want 401", code)
	}
	if code := status(t, root, "/api/probe/cam", "", "Authorization", "Bearer "+token); code != 200 {
		t.Errorf("with the token: %d, want 200", code)
	}
}
