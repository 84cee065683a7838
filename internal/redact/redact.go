// Package redact hides secrets in URLs before they are printed or logged:
// the password of the userinfo (or a userinfo that is only a token) and the
// values of query parameters that look like secrets. It works on the text,
// not on url.Parse, because the URLs users type often do not parse: an
// unescaped '@', '#', '%' or '/' in a password is common
// (redis://:p@ssw0rd@host, rtsp://admin:p@ss#99@cam). When the text is
// ambiguous it hides more, never less.
package redact

import "strings"

// Mask replaces each hidden secret.
const Mask = "xxxxx"

// secretKeys are substrings of query parameter names whose values are
// hidden (compared in lower case).
var secretKeys = []string{"token", "key", "pass", "pwd", "secret", "sig", "auth", "credential", "session", "code"}

// URL returns s with its secrets masked:
//
//   - scheme://user:password@host → scheme://user:xxxxx@host. The
//     userinfo runs to the last '@' before the first '/' that follows its
//     first '@', so an unescaped '@', '#', '?' or ':' in the password
//     stays hidden.
//   - scheme://token@host (no ':') → scheme://xxxxx@host: a lone
//     userinfo is often a token or a password (go-redis reads
//     redis://pass@host that way in some versions).
//   - ?token=…, &key=…, &password=…, &sig=… and similar: the value is
//     masked.
//
// A string without "://" is returned unchanged. URL is idempotent.
func URL(s string) string {
	i := strings.Index(s, "://")
	if i <= 0 {
		return s
	}
	head, rest := s[:i+3], s[i+3:]
	if a := strings.IndexByte(rest, '@'); a >= 0 && userinfoAhead(rest, a) {
		end := len(rest)
		if sl := strings.IndexByte(rest[a:], '/'); sl >= 0 {
			end = a + sl
		}
		at := strings.LastIndexByte(rest[:end], '@')
		user, pass, hasPass := strings.Cut(rest[:at], ":")
		switch {
		case hasPass && pass == "":
			user += ":" // an empty password: nothing to hide
		case hasPass:
			user += ":" + Mask
		default:
			user = Mask
		}
		rest = user + rest[at:]
	}
	return head + query(rest)
}

// userinfoAhead reports whether the '@' at a ends a userinfo rather than
// sitting in the path or query (http://host/me@example.com): true when no
// '/', '?' or '#' comes before it, when a '?' or '#' does, or when what
// comes before the first '/' is not a plain host[:port] (a password with an
// unescaped '/': redis://:pa/ss@host). Two cases stay ambiguous and may be
// read as a path: a password of digits before its '/' (u:12/ab@h), and one
// holding both '@' and '/' unescaped. Escape those (%2F, %40).
func userinfoAhead(rest string, a int) bool {
	d := strings.IndexAny(rest, "/?#")
	if d < 0 || d > a || rest[d] != '/' {
		// A '?' or '#' before the '@': a password holding it
		// (rtsp://u:99#pw@cam), or an address in a query right after the
		// host (http://host?to=a@b). Hide more.
		return true
	}
	h := rest[:d]
	if strings.HasPrefix(h, "[") {
		return false // [v6]:port
	}
	c := strings.IndexByte(h, ':')
	if c < 0 {
		return false // host
	}
	if c == len(h)-1 {
		return true // "user:" then a password starting with '/'
	}
	for _, r := range h[c+1:] {
		if r < '0' || r > '9' {
			return true // not a port: user:pass…
		}
	}
	return false // host:port
}

// query masks secret-looking parameter values after the first '?'.
func query(s string) string {
	q := strings.IndexByte(s, '?')
	if q < 0 {
		return s
	}
	frag := ""
	body := s[q+1:]
	if h := strings.IndexByte(body, '#'); h >= 0 {
		body, frag = body[:h], body[h:]
	}
	parts := strings.Split(body, "&")
	for j, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok || v == "" || v == Mask {
			continue
		}
		lk := strings.ToLower(k)
		for _, sk := range secretKeys {
			if strings.Contains(lk, sk) {
				parts[j] = k + "=" + Mask
				break
			}
		}
	}
	return s[:q+1] + strings.Join(parts, "&") + frag
}

// Text masks every URL in free text (an FFmpeg or go-redis message): each
// whitespace-separated word containing "://" goes through URL, quotes and
// brackets around it kept.
func Text(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	words := strings.Fields(s)
	changed := false
	for i, w := range words {
		if strings.Contains(w, "://") {
			start := strings.IndexFunc(w, func(r rune) bool { return r != '"' && r != '\'' && r != '(' && r != '<' && r != '[' })
			if start < 0 {
				continue
			}
			if r := w[:start] + URL(w[start:]); r != w {
				words[i], changed = r, true
			}
		}
	}
	if !changed {
		return s
	}
	return strings.Join(words, " ")
}
