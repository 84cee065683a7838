package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"image/jpeg"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chryscloud/chrysalis-go/flow"
)

// MJPEGOptions configures an MJPEGServer. The zero value encodes quality-80
// JPEGs as fast as clients take them and drops clients that accept nothing
// for 10 s.
type MJPEGOptions struct {
	// Quality is the JPEG quality, 1..100. Default 80.
	Quality int
	// MaxFPS caps the JPEG encodes per second of each stream (wall clock).
	// 0 (default) means no cap: a stream encodes its newest image whenever
	// the previous encode is done.
	MaxFPS float64
	// WriteTimeout drops a client that has not accepted a part for this
	// long (its connection is closed). Default 10 s.
	WriteTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// MJPEGStats are one stream's counters.
type MJPEGStats struct {
	// Received counts images the stream's sink consumed; Encoded counts
	// JPEG encodes (at most one per image, none while nobody watches).
	Received, Encoded int64
	// Watchers is the number of connected /stream clients.
	Watchers int
	// Parts counts multipart parts written to clients, all together.
	Parts int64
}

// MJPEGServer is an HTTP preview of live streams as Motion-JPEG, which any
// browser shows in an <img> tag. Publish a stream with Sink, serve
// Handler:
//
//	GET /                    an HTML page showing every stream
//	GET /stream/<name>       multipart/x-mixed-replace of JPEG parts
//	GET /snapshot/<name>.jpg the newest frame as one JPEG
//
// Each stream keeps only its newest image and its newest JPEG. An image is
// encoded once, whatever the number of clients, and only while a client
// watches (or when a snapshot asks for it). Each client is sent the newest
// JPEG whenever it is ready for one, skipping those it was too slow for:
// a slow client never slows the sink or other clients.
//
// The server is safe for concurrent use. Close ends the streaming
// handlers.
type MJPEGServer struct {
	o   MJPEGOptions
	log *slog.Logger

	mu      sync.Mutex
	streams map[string]*mjpegStream
	clients map[*http.ResponseController]struct{}

	closed    chan struct{}
	closeOnce sync.Once
	parts     atomic.Int64
}

// NewMJPEGServer returns a server with no streams. Out-of-range options
// are clamped to their defaults.
func NewMJPEGServer(o MJPEGOptions) *MJPEGServer {
	if o.Quality <= 0 || o.Quality > 100 {
		o.Quality = 80
	}
	if o.MaxFPS < 0 {
		o.MaxFPS = 0
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &MJPEGServer{o: o, log: o.Logger, streams: map[string]*mjpegStream{},
		clients: map[*http.ResponseController]struct{}{}, closed: make(chan struct{})}
}

// mjpegStream is one published stream.
type mjpegStream struct {
	srv  *MJPEGServer
	name string

	mu        sync.Mutex
	latest    flow.Image // newest image not yet encoded (the stream holds a reference)
	latestSeq uint64
	jpeg      []byte // newest JPEG; never modified once published
	jpegSeq   uint64 // the image seq it encodes
	notify    chan struct{}
	watchers  int
	running   bool

	wake chan struct{} // cap 1: there may be something to encode

	encMu sync.Mutex // one encode at a time; guards px
	px    pixBuf

	received, encoded atomic.Int64
}

func (s *MJPEGServer) stream(name string) *mjpegStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil {
		st = &mjpegStream{srv: s, name: name, notify: make(chan struct{}), wake: make(chan struct{}, 1)}
		s.streams[name] = st
	}
	return st
}

func (s *MJPEGServer) lookup(name string) *mjpegStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[name]
}

// Streams lists the published stream names, sorted.
func (s *MJPEGServer) Streams() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.streams))
	for n := range s.streams {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Stats returns a stream's counters (zero for an unknown stream).
func (s *MJPEGServer) Stats(stream string) MJPEGStats {
	st := s.lookup(stream)
	if st == nil {
		return MJPEGStats{}
	}
	st.mu.Lock()
	w := st.watchers
	st.mu.Unlock()
	return MJPEGStats{Received: st.received.Load(), Encoded: st.encoded.Load(), Watchers: w, Parts: s.parts.Load()}
}

// Sink publishes a stream under name (listed on the page from now on) and
// returns the sink that feeds it. Run one sink per name at a time. The
// sink keeps the newest image (releasing the one it replaces) and never
// waits for clients or the encoder. After Close the sink still consumes
// and releases images, so a graph is not stalled by a closed preview.
func (s *MJPEGServer) Sink(name string) flow.Sink {
	return s.stream(name)
}

var _ flow.Sink = (*mjpegStream)(nil)

// Run implements flow.Sink.
func (st *mjpegStream) Run(ctx context.Context, in <-chan flow.Image) error {
	st.mu.Lock()
	if st.running {
		st.mu.Unlock()
		return fmt.Errorf("sink: mjpeg stream %q already has a running sink", st.name)
	}
	st.running = true
	st.mu.Unlock()

	ectx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		st.encodeLoop(ectx)
	}()
	defer func() {
		cancel()
		wg.Wait()
		st.mu.Lock()
		st.running = false
		if st.latest != nil {
			st.latest.Release()
			st.latest = nil
		}
		st.mu.Unlock()
	}()
	return each(ctx, in, func(img flow.Image) error {
		st.offer(img)
		return nil
	})
}

// offer makes img the newest image and wakes the encoder if anyone
// watches.
func (st *mjpegStream) offer(img flow.Image) {
	st.received.Add(1)
	st.mu.Lock()
	if st.latest != nil {
		st.latest.Release()
	}
	st.latest = img
	st.latestSeq++
	watched := st.watchers > 0
	st.mu.Unlock()
	if watched {
		st.poke()
	}
}

func (st *mjpegStream) poke() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// encodeLoop encodes the newest image when woken, at most MaxFPS times a
// second.
func (st *mjpegStream) encodeLoop(ctx context.Context) {
	var interval time.Duration
	if st.srv.o.MaxFPS > 0 {
		interval = time.Duration(float64(time.Second) / st.srv.o.MaxFPS)
	}
	var next time.Time
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-st.wake:
		}
		if d := time.Until(next); interval > 0 && d > 0 {
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		if st.encodeLatest(true) {
			next = time.Now().Add(interval)
		}
	}
}

// encodeLatest encodes the newest image unless it is encoded already (or,
// with onlyWatched, nobody watches), publishes the JPEG and wakes the
// clients. It reports whether it encoded.
func (st *mjpegStream) encodeLatest(onlyWatched bool) bool {
	st.encMu.Lock()
	defer st.encMu.Unlock()
	st.mu.Lock()
	img, seq := st.latest, st.latestSeq
	if img == nil || seq == st.jpegSeq || (onlyWatched && st.watchers == 0) {
		st.mu.Unlock()
		return false
	}
	img.Retain() // offer may replace (and release) it meanwhile
	st.mu.Unlock()

	data, err := st.encode(img)

	st.mu.Lock()
	if st.latest == img {
		st.latest = nil // the JPEG stands for it now
		img.Release()
	}
	if err == nil && seq > st.jpegSeq {
		st.jpeg, st.jpegSeq = data, seq
		close(st.notify)
		st.notify = make(chan struct{})
	}
	st.mu.Unlock()
	img.Release()
	if err != nil {
		st.srv.log.Warn("sink: mjpeg encode failed", "stream", st.name, "err", err)
		return false
	}
	st.encoded.Add(1)
	return true
}

func (st *mjpegStream) encode(img flow.Image) ([]byte, error) {
	m, err := st.px.view(img)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(img.Width * img.Height / 4)
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: st.srv.o.Quality}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// current returns the newest JPEG, its sequence and the channel closed at
// the next one.
func (st *mjpegStream) current() ([]byte, uint64, <-chan struct{}) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.jpeg, st.jpegSeq, st.notify
}

func (st *mjpegStream) watch(d int) {
	st.mu.Lock()
	st.watchers += d
	pending := st.latest != nil && st.latestSeq != st.jpegSeq
	st.mu.Unlock()
	if d > 0 && pending {
		st.poke() // a new viewer should not wait for the next image
	}
}

// Handler returns the HTTP handler. Mount it under a prefix with
// http.StripPrefix; the page links are relative.
func (s *MJPEGServer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.servePage)
	mux.HandleFunc("GET /stream/{name...}", s.serveStream)
	mux.HandleFunc("GET /snapshot/{file...}", s.serveSnapshot)
	return mux
}

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Chrysalis preview</title>
<style>body{font-family:sans-serif;margin:1em;background:#222;color:#eee}figure{display:inline-block;margin:0 1em 1em 0}img{max-width:100%;background:#000}a{color:#9cf}</style>
</head><body><h1>Chrysalis preview</h1>
{{range .}}<figure><img src="stream/{{.Path}}" alt="{{.Name}}"><figcaption>{{.Name}} · <a href="snapshot/{{.Path}}.jpg">snapshot</a></figcaption></figure>
{{else}}<p>No streams.</p>
{{end}}</body></html>
`))

func (s *MJPEGServer) servePage(w http.ResponseWriter, r *http.Request) {
	type entry struct{ Name, Path string }
	var es []entry
	for _, n := range s.Streams() {
		es = append(es, entry{n, url.PathEscape(n)})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := pageTmpl.Execute(w, es); err != nil {
		s.log.Debug("sink: mjpeg page", "err", err)
	}
}

func (s *MJPEGServer) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("file"), ".jpg")
	st := s.lookup(name)
	if !ok || st == nil {
		http.NotFound(w, r)
		return
	}
	st.encodeLatest(false)
	data, _, _ := st.current()
	if data == nil {
		http.Error(w, "no frame yet", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Header().Set("Cache-Control", "no-store")
	w.Write(data)
}

const boundary = "chrysalisframe"

var errClosed = errors.New("closed")

func (s *MJPEGServer) serveStream(w http.ResponseWriter, r *http.Request) {
	st := s.lookup(r.PathValue("name"))
	if st == nil {
		http.NotFound(w, r)
		return
	}
	rc := http.NewResponseController(w)
	s.mu.Lock()
	select {
	case <-s.closed:
		s.mu.Unlock()
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	default:
	}
	s.clients[rc] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.clients, rc)
		s.mu.Unlock()
	}()
	st.watch(1)
	defer st.watch(-1)

	h := w.Header()
	h.Set("Content-Type", "multipart/x-mixed-replace; boundary="+boundary)
	h.Set("Cache-Control", "no-store")
	h.Set("Connection", "close")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	var seen uint64
	var head []byte
	for {
		data, seq, notify := st.current()
		if data != nil && seq != seen {
			seen = seq
			// A stalled client is dropped after WriteTimeout. The deadline
			// is set under s.mu, so Close either sees it and cuts it short
			// or is seen here.
			s.mu.Lock()
			err := errClosed
			select {
			case <-s.closed:
			default:
				err = rc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
			}
			s.mu.Unlock()
			if err != nil && !errors.Is(err, http.ErrNotSupported) {
				return
			}
			head = fmt.Appendf(head[:0], "--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", boundary, len(data))
			if _, err := w.Write(head); err != nil {
				return
			}
			if _, err := w.Write(data); err != nil {
				return
			}
			if _, err := w.Write([]byte("\r\n")); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			s.parts.Add(1)
			continue
		}
		select {
		case <-notify:
		case <-r.Context().Done():
			return
		case <-s.closed:
			return
		}
	}
}

// Close ends every streaming handler (also those blocked writing to a
// stalled client) and refuses new streaming requests. Pages and snapshots
// are still served. The sinks keep running (see Sink). Idempotent.
func (s *MJPEGServer) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		close(s.closed)
		for rc := range s.clients {
			rc.SetWriteDeadline(time.Now()) // unblock a Write stuck on a full socket
		}
	})
	return nil
}
