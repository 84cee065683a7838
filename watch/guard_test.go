package watch_test

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/watch"
)

// do sends a GET to url with the Host header and extra headers set.
func do(t *testing.T, url, host string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Read the whole body, so that the request has ended on the server (an
	// export holds one of its few slots until then) before the next one.
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body[:min(len(body), 512)])
}

// DNS rebinding: a page on attacker.example whose name resolves to
// 127.0.0.1 makes the browser send Host: attacker.example. Only loopback
// names and the listed hosts are answered; the rest get 421, the page,
// the API and the live stream alike.
func TestHostAllowList(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	cl, _ := memClip(t)
	_, ts := server(t, watch.Options{Client: cl, Cameras: []string{"cam"}, AllowedHosts: []string{"cams.lan", "10.1.2.3"}})
	port := ts.URL[strings.LastIndex(ts.URL, ":"):]
	for _, tc := range []struct {
		host string
		code int
	}{
		{"", 200}, // the URL's own: 127.0.0.1:port
		{"localhost" + port, 200},
		{"LOCALHOST", 200},
		{"127.0.0.2" + port, 200},
		{"[::1]" + port, 200},
		{"cams.lan" + port, 200},
		{"CAMS.LAN.", 200},
		{"10.1.2.3" + port, 200},
		{"attacker.example" + port, 421},
		{"attacker.example", 421},
		{"localhost.attacker.example", 421},
		{"127.0.0.1.attacker.example", 421},
		{"10.1.2.4" + port, 421},
		{"cams.lan.attacker.example", 421},
	} {
		for _, path := range []string{"/", "/api/screenshot/cam?at=" + "1760000002000", "/api/export/cam?last=1s", "/api/probe/cam"} {
			resp, body := do(t, ts.URL+path, tc.host, nil)
			if resp.StatusCode != tc.code {
				t.Errorf("Host %q GET %s: %d %q, want %d", tc.host, path, resp.StatusCode, body, tc.code)
			}
		}
	}
}

// A token: without it 401, with the bearer header, the query (which sets
// the cookie) or the cookie, the request is served. The Host check comes
// first.
func TestToken(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	cl, _ := memClip(t)
	const token = "s3cret-token"
	_, ts := server(t, watch.Options{Client: cl, Cameras: []string{"cam"}, Token: token})
	for _, tc := range []struct {
		name string
		path string
		host string
		hdr  map[string]string
		code int
	}{
		{"none", "/api/probe/cam", "", nil, 401},
		{"page none", "/", "", nil, 401},
		{"wrong bearer", "/api/probe/cam", "", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"prefix bearer", "/api/probe/cam", "", map[string]string{"Authorization": "Bearer s3cret"}, 401},
		{"empty bearer", "/api/probe/cam", "", map[string]string{"Authorization": "Bearer "}, 401},
		{"basic", "/api/probe/cam", "", map[string]string{"Authorization": "Basic " + token}, 401},
		{"wrong query", "/api/probe/cam?token=nope", "", nil, 401},
		{"wrong cookie", "/api/probe/cam", "", map[string]string{"Cookie": watch.TokenCookie + "=nope"}, 401},
		{"bearer", "/api/probe/cam", "", map[string]string{"Authorization": "Bearer " + token}, 200},
		{"cookie", "/api/probe/cam", "", map[string]string{"Cookie": watch.TokenCookie + "=" + token}, 200},
		{"query", "/?token=" + token, "", nil, 200},
		{"bearer, foreign host", "/api/probe/cam", "attacker.example", map[string]string{"Authorization": "Bearer " + token}, 421},
	} {
		resp, body := do(t, ts.URL+tc.path, tc.host, tc.hdr)
		if resp.StatusCode != tc.code {
			t.Errorf("%s: GET %s: %d %q, want %d", tc.name, tc.path, resp.StatusCode, body, tc.code)
		}
		if tc.code == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
		if tc.name == "query" {
			var c *http.Cookie
			for _, k := range resp.Cookies() {
				if k.Name == watch.TokenCookie {
					c = k
				}
			}
			if c == nil || c.Value != token || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				t.Errorf("?token= set cookie %+v, want an HttpOnly SameSite=Strict %s", c, watch.TokenCookie)
			}
		}
	}
}

// blockingCache holds every Range call until release is closed, and
// reports each call on entered: an export in progress, held still.
type blockingCache struct {
	cache.Cache
	entered chan struct{}
	release chan struct{}
}

func (c *blockingCache) Range(ctx context.Context, camera string, start, end cache.ID, count int64) ([]cache.Packet, error) {
	select {
	case c.entered <- struct{}{}:
	default:
	}
	select {
	case <-c.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c.Cache.Range(ctx, camera, start, end, count)
}

// Exports beyond MaxConcurrentExports are answered 429 at once; a slot
// freed by a finished export is taken by the next request.
func TestExportConcurrencyLimit(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	cl, _ := memClip(t)
	bc := &blockingCache{Cache: cl.Cache(), entered: make(chan struct{}, 8), release: make(chan struct{})}
	_, ts := server(t, watch.Options{Client: chrysalis.New(bc, chrysalis.Options{}), Cameras: []string{"cam"}, MaxConcurrentExports: 2})
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(ts.URL + "/api/export/cam?last=1s")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	<-bc.entered
	<-bc.entered // both hold a slot
	// The third: answered 429 at once, or (the bug) it starts exporting.
	type answer struct {
		resp *http.Response
		body string
	}
	third := make(chan answer, 1)
	go func() {
		resp, body := do(t, ts.URL+"/api/export/cam?last=1s", "", nil)
		third <- answer{resp, body}
	}()
	select {
	case a := <-third:
		if a.resp.StatusCode != 429 || a.resp.Header.Get("Retry-After") == "" || !strings.Contains(a.body, "at most 2") {
			t.Errorf("third export: %d %q %v, want 429 with Retry-After", a.resp.StatusCode, a.body, a.resp.Header)
		}
	case <-bc.entered:
		t.Errorf("a third export started beyond MaxConcurrentExports 2")
		close(bc.release)
		<-third
	}
	select {
	case <-bc.release:
	default:
		close(bc.release)
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("a held export answered %d", c)
		}
	}
	// A handler frees its slot just after its response is sent: wait for it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, body := do(t, ts.URL+"/api/export/cam?last=1s", "", nil)
		if resp.StatusCode == 200 {
			break
		}
		if resp.StatusCode != 429 || time.Now().After(deadline) {
			t.Fatalf("after the slots freed: %d %q", resp.StatusCode, body)
		}
		runtime.Gosched()
	}
}

// The export window is bounded by MaxExport, and numbers that name no
// duration are 400 with a one-line message.
func TestExportWindowLimit(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	cl, _ := memClip(t)
	_, ts := server(t, watch.Options{Client: cl, Cameras: []string{"cam"}, MaxExport: 3 * time.Second})
	for _, tc := range []struct {
		last string
		code int
		want string
	}{
		{"3s", 200, ""},
		{"3", 200, ""},
		{"3001ms", 400, "at most 3s"},
		{"4", 400, "at most 3s"},
		{"NaN", 400, "bad last"},
		{"nan", 400, "bad last"},
		{"Inf", 400, "bad last"},
		{"-Inf", 400, "bad last"},
		{"1e300", 400, "at most 3s"},
		{"-1e300", 400, "more than 0"},
		{"0", 400, "more than 0"},
	} {
		resp, body := do(t, ts.URL+"/api/export/cam?last="+tc.last, "", nil)
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) || strings.Contains(body, "-2562047h") {
			t.Errorf("last=%s: %d %q, want %d containing %q", tc.last, resp.StatusCode, body, tc.code, tc.want)
		}
	}
}
