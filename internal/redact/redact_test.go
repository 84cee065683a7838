package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"redis://:S3cr3tPW@10.0.0.5:6379/0", "redis://:xxxxx@10.0.0.5:6379/0"},
		{"redis://:p@ssw0rd@host", "redis://:xxxxx@host"},                                // '@' in the password
		{"redis://reader:pw@host:6379", "redis://reader:xxxxx@host:6379"},                // ACL user kept
		{"rediss://u:p@ss:w@rd@host/1", "rediss://u:xxxxx@host/1"},                       // ':' and '@' in the password
		{"rtsp://admin:Pa%ss99@10.0.0.7/stream1", "rtsp://admin:xxxxx@10.0.0.7/stream1"}, // does not parse
		{"rtsp://admin:p@ss#99@10.0.0.7/s", "rtsp://admin:xxxxx@10.0.0.7/s"},             // '#' in the password
		{"rtsp://admin:p?ss@10.0.0.7/s", "rtsp://admin:xxxxx@10.0.0.7/s"},                // '?' in the password
		{"rtmp://host/live/cam?token=abc123", "rtmp://host/live/cam?token=xxxxx"},
		{"https://h/x?a=1&api_key=K&Signature=S&b=2#f", "https://h/x?a=1&api_key=xxxxx&Signature=xxxxx&b=2#f"},
		{"http://h/x?password=p&user=bob", "http://h/x?password=xxxxx&user=bob"},
		{"rtmp://127.0.0.1:1935/live/cam?key=k3y", "rtmp://127.0.0.1:1935/live/cam?key=xxxxx"},
		{"redis://tok3n@host:6379", "redis://xxxxx@host:6379"}, // a lone userinfo may be a secret
		{"redis://user:@host", "redis://user:@host"},           // nothing to hide
		{"redis://localhost:6379/0", "redis://localhost:6379/0"},
		{"http://host/path?q=a@b", "http://host/path?q=a@b"},               // no '@' before the path: untouched
		{"http://host/me@example.com", "http://host/me@example.com"},       // an address in the path
		{"http://host:8080/me@x.com?t=1", "http://host:8080/me@x.com?t=1"}, // the same with a port
		{"redis://:pa/ss@host", "redis://:xxxxx@host"},                     // '/' in the password
		{"redis://u:pa?ss@host", "redis://u:xxxxx@host"},                   // '?' in the password
		{"testdata/clip720.mp4", "testdata/clip720.mp4"},
		{"user:pass@host", "user:pass@host"}, // not a URL
		{"", ""},
		{"://:p@h", "://:p@h"},
	} {
		got := URL(tc.in)
		if got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if again := URL(got); again != got {
			t.Errorf("URL not idempotent on %q: %q", got, again)
		}
	}
}

func TestText(t *testing.T) {
	in := `[rtsp @ 0x1] "rtsp://admin:p@ss#99@10.0.0.7/s": 401 Unauthorized; retry redis://:pw@h:1`
	got := Text(in)
	if strings.Contains(got, "p@ss#99") || strings.Contains(got, ":pw@") || !strings.Contains(got, "401 Unauthorized") ||
		!strings.Contains(got, `"rtsp://admin:xxxxx@10.0.0.7/s":`) {
		t.Fatalf("Text = %q", got)
	}
	if s := "no urls here\n"; Text(s) != s {
		t.Fatalf("Text changed %q", s)
	}
}

// FuzzURL: no panic; idempotent; a password or token placed in a URL's
// userinfo or a secret query parameter never survives.
func FuzzURL(f *testing.F) {
	for _, s := range []string{"S3cr3tPW", "p@ssw0rd", "p@ss#99", "Pa%ss99", "a:b@c", "tok/en", "x?y=z"} {
		f.Add("redis", "user", s, "host:6379", "/0", "token")
	}
	f.Add("rtsp", "", "pw", "[::1]:554", "/s?x=1", "sig")
	f.Fuzz(func(t *testing.T, scheme, user, secret, host, path, qkey string) {
		for _, s := range []string{scheme, user, host, path, qkey} {
			if strings.Contains(s, "\x00") {
				return
			}
		}
		out := URL(secret) // arbitrary text: no panic, idempotent
		if URL(out) != out {
			t.Fatalf("not idempotent on %q", secret)
		}
		if len(secret) < 4 || digitsBeforeSlash(secret) || strings.Contains(secret, "/") && strings.Contains(secret, "@") || strings.ContainsAny(user, "@:/[]?#") ||
			strings.ContainsAny(host, "@/?#") || strings.ContainsAny(path, "@") ||
			!isScheme(scheme) {
			return // the property below needs a URL shaped as documented
		}
		u := scheme + "://" + user + ":" + secret + "@" + host + "/" + strings.TrimPrefix(path, "/")
		visible := scheme + "://" + user + ":" + Mask + "@" + host + "/" + strings.TrimPrefix(path, "/")
		if got := URL(u); strings.Contains(got, secret) && !strings.Contains(visible, secret) {
			t.Fatalf("URL(%q) = %q shows the password", u, got)
		}
		if !strings.ContainsAny(secret, "&#=?") && strings.Contains(strings.ToLower(qkey), "token") && !strings.ContainsAny(qkey, "&#=?@/") {
			q := scheme + "://" + host + "/x?" + qkey + "=" + secret
			// A secret that is a prefix of the mask ("xxxx") stands in the
			// masked output too, as for the password above.
			if got := URL(q); strings.Contains(got, "="+secret) && !strings.HasPrefix(Mask, secret) {
				t.Fatalf("URL(%q) = %q shows the query secret", q, got)
			}
		}
	})
}

// digitsBeforeSlash: a password "12/ab" reads as a port and a path (the
// one documented ambiguity).
func digitsBeforeSlash(s string) bool {
	i := strings.IndexByte(s, '/')
	if i < 0 {
		return false
	}
	for _, r := range s[:i] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func isScheme(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
