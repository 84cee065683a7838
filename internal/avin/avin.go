// Package avin is what the packages that demux FFmpeg inputs (ingest and
// source) share to open them: reading an input string (URL or path), the
// open options both set, and a format context whose blocking calls a
// context, or a caller such as a watchdog, can interrupt.
package avin

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/redact"
)

// Scheme returns the lower-case scheme of a URL input, or "" for a plain
// path, including Windows-style "C:\..." paths and names with colons
// ("name:with:colons.mp4"): a scheme other than file needs "://".
func Scheme(in string) string {
	i := strings.Index(in, ":")
	if i <= 1 { // none, or a drive letter
		return ""
	}
	s := strings.ToLower(in[:i])
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.') {
			return ""
		}
	}
	if s != "file" && !strings.HasPrefix(in[i:], "://") {
		return "" // "name:with:colons.mp4" is a path
	}
	return s
}

// IsNetwork reports whether in is a network URL (a scheme other than
// file), as opposed to a local file.
func IsNetwork(in string) bool {
	s := Scheme(in)
	return s != "" && s != "file"
}

// Redact hides a password and secret query values in a URL input, for
// logs and errors (redact.URL). Other inputs are returned as they are.
func Redact(in string) string { return redact.URL(in) }

// SetTimeouts sets in o the timeouts of a pulled network input of the given
// scheme: rw_timeout, and for RTSP (whose "timeout" is its socket I/O
// timeout) timeout, both d in microseconds. A listening input must not get
// rw_timeout: waiting for a pusher is unbounded.
func SetTimeouts(o map[string]string, scheme string, d time.Duration) {
	us := strconv.FormatInt(d.Microseconds(), 10)
	o["rw_timeout"] = us
	if scheme == "rtsp" || scheme == "rtsps" {
		o["timeout"] = us
	}
}

// Dictionary returns opts as an FFmpeg dictionary for
// avformat_open_input; the caller frees it. After the open, the entries
// left in it are the options FFmpeg did not use.
func Dictionary(opts map[string]string) (*astiav.Dictionary, error) {
	d := astiav.NewDictionary()
	for k, v := range opts {
		if err := d.Set(k, v, 0); err != nil {
			d.Free()
			return nil, fmt.Errorf("input option %s=%s: %w", k, v, err)
		}
	}
	return d, nil
}

// VideoStream returns fc's first video stream, or nil when it has none.
func VideoStream(fc *astiav.FormatContext) *astiav.Stream {
	for _, st := range fc.Streams() {
		if st.CodecParameters().MediaType() == astiav.MediaTypeVideo {
			return st
		}
	}
	return nil
}

// Codec reads a stream's codec parameters: name, size, pixel format and a
// copy of the extradata (LongName is left empty).
func Codec(cp *astiav.CodecParameters) cache.Codec {
	return cache.Codec{
		Name:      cp.CodecID().Name(),
		Width:     cp.Width(),
		Height:    cp.Height(),
		PixFmt:    PixFmtName(cp.PixelFormat()),
		Extradata: cp.ExtraData(),
	}
}

// PixFmtName is f's FFmpeg name, or "" for PixelFormatNone.
func PixFmtName(f astiav.PixelFormat) string {
	if f == astiav.PixelFormatNone {
		return ""
	}
	return f.Name()
}

// ReasonCancel is Input.Reason after its context ended.
const ReasonCancel = "cancel"

// Input is a format context whose blocking FFmpeg calls (open, probe,
// read) can be interrupted: by the end of the context it was allocated
// with, or by Interrupt. An interrupted call fails; Reason tells why.
type Input struct {
	// FC is the format context: open and close the input on it, but free
	// it with Input.Free.
	FC *astiav.FormatContext

	mu  sync.Mutex
	ii  astiav.IOInterrupter // FFmpeg polls its flag: set it under mu
	why string

	stop   func() bool
	cbDone chan struct{}
}

// Alloc allocates an Input whose calls are interrupted when ctx ends. Free
// it (after CloseInput) in the same scope.
func Alloc(ctx context.Context) (*Input, error) {
	fc := astiav.AllocFormatContext()
	if fc == nil {
		return nil, errors.New("allocating a format context failed")
	}
	in := &Input{FC: fc, cbDone: make(chan struct{})}
	in.ii = fc.SetInterruptCallback()
	in.stop = context.AfterFunc(ctx, func() {
		defer close(in.cbDone)
		in.Interrupt(ReasonCancel)
	})
	return in, nil
}

// Interrupt makes the blocking call in progress, and every later one,
// fail. The first reason given is kept. Safe from any goroutine.
func (in *Input) Interrupt(why string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.why == "" {
		in.why = why
	}
	in.ii.Interrupt()
}

// Reason is why the Input was interrupted ("" if it was not). Safe from any
// goroutine.
func (in *Input) Reason() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.why
}

// Free stops watching the context, waiting for a cancel callback that is
// running, and frees the format context. Call it once, when no other
// goroutine calls Interrupt any more.
func (in *Input) Free() {
	if !in.stop() {
		<-in.cbDone
	}
	in.FC.Free()
	// FFmpeg kept a pointer into the interrupter until the free.
	runtime.KeepAlive(in)
}
