package main

import (
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
)

// FuzzParseTime: the CLI's TIME parser never panics, and a time it accepts
// is one a cache id can name (1970 to year 9999); a rejection is a usage
// error (exit 2).
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"now", "-5s", "+1m30s", "-600000h", "1760000000000", "1760000000", "253402300800000",
		"2026-11-25T12:00:00Z", "1960-01-01T00:00:00Z", "10000-01-01T00:00:00Z", "NaN", "-9223372036854775808ns", " ", ""} {
		f.Add(s)
	}
	now := time.UnixMilli(1_760_000_000_000)
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := parseTime("at", s, now)
		if err != nil {
			if exitCode(err) != exitUsage {
				t.Fatalf("parseTime(%q): %v is not a usage error", s, err)
			}
			return
		}
		if cerr := cache.CheckTime(tm); cerr != nil {
			t.Fatalf("parseTime(%q) = %v, which a cache id cannot name: %v", s, tm, cerr)
		}
	})
}
