package watch

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
)

// TokenCookie is the cookie the page's requests carry the token in, set by
// the first request that presents the token as ?token=.
const TokenCookie = "chrysalis_watch_token"

// hostAllowed reports whether a request's Host header names this server:
// a loopback name or address, or one of allowed (compared without the
// port, case-insensitively; "*" allows any host). This is what defeats DNS
// rebinding: a page on attacker.example that rebinds its name to 127.0.0.1
// still sends Host: attacker.example.
func hostAllowed(host string, allowed []string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" {
		return false // HTTP/1.1 requires Host; HTTP/1.0 clients are not browsers worth serving here
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(strings.Trim(a, "[]"), "."), host) {
			return true
		}
		if ip, aip := net.ParseIP(host), net.ParseIP(strings.Trim(a, "[]")); ip != nil && aip != nil && ip.Equal(aip) {
			return true
		}
	}
	return false
}

// guard wraps h: a request whose Host is not allowed is answered 421
// Misdirected Request; with a token set, a request that does not present it
// (Authorization: Bearer, the cookie, or ?token=) is answered 401.
func (w *Watch) guard(h http.Handler) http.Handler {
	var want [32]byte
	if w.o.Token != "" {
		want = sha256.Sum256([]byte(w.o.Token))
	}
	ok := func(got string) bool {
		g := sha256.Sum256([]byte(got)) // equal lengths: the compare is constant-time
		return got != "" && subtle.ConstantTimeCompare(g[:], want[:]) == 1
	}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !hostAllowed(r.Host, w.o.AllowedHosts) {
			w.log.Warn("watch: refused a request for another host (DNS rebinding?); allow it with AllowedHosts (--allow-host)",
				"host", r.Host, "remote", r.RemoteAddr, "path", r.URL.Path)
			http.Error(rw, "misdirected request: this server does not answer for host "+r.Host, http.StatusMisdirectedRequest)
			return
		}
		if w.o.Token == "" {
			h.ServeHTTP(rw, r)
			return
		}
		if bearer, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found && ok(strings.TrimSpace(bearer)) {
			h.ServeHTTP(rw, r)
			return
		}
		if c, err := r.Cookie(TokenCookie); err == nil && ok(c.Value) {
			h.ServeHTTP(rw, r)
			return
		}
		if q := r.URL.Query().Get("token"); ok(q) {
			// The page's own requests (images, fetches, HLS segments) are
			// relative and carry no query: give the browser a cookie.
			http.SetCookie(rw, &http.Cookie{Name: TokenCookie, Value: q, Path: "/", HttpOnly: true,
				SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
			h.ServeHTTP(rw, r)
			return
		}
		rw.Header().Set("WWW-Authenticate", `Bearer realm="chrysalis watch"`)
		http.Error(rw, "unauthorized: open the page with ?token=TOKEN or send Authorization: Bearer TOKEN", http.StatusUnauthorized)
	})
}
