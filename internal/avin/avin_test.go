package avin_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chryscloud/chrysalis-go/internal/avin"
	"github.com/chryscloud/chrysalis-go/internal/testx"
)

func TestScheme(t *testing.T) {
	for _, tc := range []struct {
		in, scheme string
		network    bool
	}{
		{"rtsp://cam/stream", "rtsp", true},
		{"RTMP://host/live/cam", "rtmp", true},
		{"srt+x://host", "srt+x", true},
		{"file:clip.mp4", "file", false},
		{"file:///tmp/clip.mp4", "file", false},
		{"/tmp/clip.mp4", "", false},
		{"clip.mp4", "", false},
		{`C:\videos\clip.mp4`, "", false},
		{"name:with:colons.mp4", "", false},
		{"we ird://x", "", false},
	} {
		if got := avin.Scheme(tc.in); got != tc.scheme {
			t.Errorf("Scheme(%q) = %q, want %q", tc.in, got, tc.scheme)
		}
		if got := avin.IsNetwork(tc.in); got != tc.network {
			t.Errorf("IsNetwork(%q) = %v, want %v", tc.in, got, tc.network)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"rtsp://admin:secret@cam:554/s": "rtsp://admin:xxxxx@cam:554/s",
		"rtsp://admin@cam/s":            "rtsp://xxxxx@cam/s", // a lone userinfo may be a token
		"rtsp://cam/s":                  "rtsp://cam/s",
		"/tmp/clip.mp4":                 "/tmp/clip.mp4",
	} {
		if got := avin.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSetTimeouts(t *testing.T) {
	for _, tc := range []struct {
		scheme string
		want   map[string]string
	}{
		{"rtmp", map[string]string{"rw_timeout": "2500000"}},
		{"rtsp", map[string]string{"rw_timeout": "2500000", "timeout": "2500000"}},
		{"rtsps", map[string]string{"rw_timeout": "2500000", "timeout": "2500000"}},
	} {
		o := map[string]string{}
		avin.SetTimeouts(o, tc.scheme, 2500*time.Millisecond)
		if !maps.Equal(o, tc.want) {
			t.Errorf("%s: %v, want %v", tc.scheme, o, tc.want)
		}
	}
}

func TestDictionary(t *testing.T) {
	d, err := avin.Dictionary(map[string]string{"rw_timeout": "1", "listen": "1"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Free()
	if e := d.Get("listen", nil, 0); e == nil || e.Value() != "1" {
		t.Errorf("listen: %v", e)
	}
}

// A blocking open (a TCP listen nobody connects to) returns once the
// context ends or Interrupt is called, and Reason says which.
func TestInputInterrupt(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, tc := range []struct {
		name string
		stop func(cancel context.CancelFunc, in *avin.Input)
		want string
	}{
		{"cancel", func(cancel context.CancelFunc, _ *avin.Input) { cancel() }, avin.ReasonCancel},
		{"interrupt", func(_ context.CancelFunc, in *avin.Input) { in.Interrupt("timeout") }, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			in, err := avin.Alloc(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Free()
			if r := in.Reason(); r != "" {
				t.Fatalf("reason %q before any interrupt", r)
			}
			time.AfterFunc(200*time.Millisecond, func() { tc.stop(cancel, in) })
			start := time.Now()
			if err := in.FC.OpenInput(fmt.Sprintf("tcp://127.0.0.1:%d?listen=1", testx.FreePort(t)), nil, nil); err == nil {
				in.FC.CloseInput()
				t.Fatal("open succeeded")
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("open returned after %v", el)
			}
			if r := in.Reason(); r != tc.want {
				t.Errorf("reason %q, want %q", r, tc.want)
			}
		})
	}
}
