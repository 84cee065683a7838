package hls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
)

// DefaultIdleTimeout is how long a Server keeps streaming a camera nobody
// requests.
const DefaultIdleTimeout = 30 * time.Second

// ServerOptions configures a Server. The zero value streams any camera the
// cache knows, with Options' defaults, into directories under os.TempDir(),
// and stops a camera 30 s after its last request.
type ServerOptions struct {
	// Options are the segment settings and logger of every camera's
	// Stream (defaults: 2 s segments, 5 in the playlist, slog.Default()).
	Options
	// IdleTimeout stops a camera's Stream (and removes its directory) when
	// no request for its playlist or segments came for this long. Default
	// DefaultIdleTimeout (30 s).
	IdleTimeout time.Duration
	// StartTimeout bounds how long a playlist request waits for a camera's
	// first segment before answering 503. Default 3 * SegmentDuration.
	StartTimeout time.Duration
	// Dir is the parent of the per-camera temporary directories. Default
	// os.TempDir().
	Dir string
	// Cameras, when not empty, is the set of cameras served; others are
	// 404. Empty (default): any camera the cache knows.
	Cameras []string
}

// Server serves cameras as HLS over HTTP:
//
//	GET /hls/<camera>/index.m3u8   the live playlist
//	GET /hls/<camera>/seg00042.ts  a segment it lists
//
// A camera's Stream starts lazily, on the first playlist request, into a
// temporary directory the Server owns; a playlist request waits (up to
// StartTimeout) for the first segment rather than failing. The Stream stops
// and its directory is removed after IdleTimeout without requests. A
// failed Stream is restarted by the next playlist request.
//
// The Server owns those goroutines: Close stops them all and waits for
// them. It is safe for concurrent use.
type Server struct {
	cache cache.Cache
	o     ServerOptions
	log   *slog.Logger
	mux   *http.ServeMux

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool
	wg       sync.WaitGroup
}

// session is one camera's running Stream.
type session struct {
	camera string
	dir    string
	ctx    context.Context
	cancel context.CancelFunc
	last   time.Time     // last request; guarded by Server.mu
	done   chan struct{} // closed when the Stream returned
	err    error         // the Stream's error; read after done
}

// NewServer returns a Server reading from c. Close it to stop its streams.
func NewServer(c cache.Cache, o ServerOptions) *Server {
	o.Options = o.Options.withDefaults()
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 3 * o.SegmentDuration
	}
	if o.Dir == "" {
		o.Dir = os.TempDir()
	}
	o.Cameras = slices.Clone(o.Cameras)
	s := &Server{cache: c, o: o, log: o.Logger, sessions: map[string]*session{}, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /hls/{camera}/{file}", s.serveFile)
	return s
}

var _ http.Handler = (*Server)(nil)

// ServeHTTP serves /hls/<camera>/<file>; mount the Server at "/hls/"
// without stripping the prefix.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Active lists the cameras being streamed now, sorted.
func (s *Server) Active() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for cam := range s.sessions {
		out = append(out, cam)
	}
	slices.Sort(out)
	return out
}

// Close stops every camera's Stream, waits for them and removes their
// directories. Later requests get 503. Idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, se := range s.sessions {
		se.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

var segmentName = regexp.MustCompile(`^seg[0-9]+\.ts$`)

// errClosed and errUnknown are how session reports why it has none.
var (
	errClosed  = errors.New("hls: server closed")
	errUnknown = errors.New("unknown camera")
)

func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	cam, file := r.PathValue("camera"), r.PathValue("file")
	w.Header().Set("Cache-Control", "no-cache")
	switch {
	case file == PlaylistName:
		s.servePlaylist(w, r, cam)
	case segmentName.MatchString(file):
		se := s.lookup(cam)
		if se == nil {
			http.Error(w, fmt.Sprintf("camera %q is not streaming; load %s first", cam, PlaylistName), http.StatusNotFound)
			return
		}
		f, err := os.Open(filepath.Join(se.dir, file))
		if err != nil {
			http.Error(w, "no such segment (it may have left the playlist)", http.StatusNotFound)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			http.Error(w, "segment unreadable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "video/mp2t")
		http.ServeContent(w, r, file, st.ModTime(), f)
	default:
		http.Error(w, fmt.Sprintf("no such file %q: want %s or segNNNNN.ts", file, PlaylistName), http.StatusNotFound)
	}
}

// servePlaylist starts the camera's Stream if needed and serves its
// playlist, waiting up to StartTimeout for it to appear.
func (s *Server) servePlaylist(w http.ResponseWriter, r *http.Request, cam string) {
	se, err := s.session(r.Context(), cam)
	switch {
	case errors.Is(err, errUnknown), errors.Is(err, cache.ErrUnknownCamera):
		http.Error(w, fmt.Sprintf("unknown camera %q", cam), http.StatusNotFound)
		return
	case errors.Is(err, errClosed):
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	case err != nil:
		http.Error(w, oneLine(err), http.StatusBadGateway)
		return
	}
	path := filepath.Join(se.dir, PlaylistName)
	deadline := time.NewTimer(s.o.StartTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
			w.Write(data)
			return
		}
		select {
		case <-poll.C:
		case <-se.done:
			if se.err != nil && !errors.Is(se.err, context.Canceled) {
				http.Error(w, oneLine(se.err), http.StatusBadGateway)
			} else {
				http.Error(w, "stream stopped; retry", http.StatusServiceUnavailable)
			}
			return
		case <-deadline.C:
			w.Header().Set("Retry-After", "1")
			http.Error(w, fmt.Sprintf("no segment of camera %q yet after %v; retry", cam, s.o.StartTimeout), http.StatusServiceUnavailable)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func oneLine(err error) string {
	msg := err.Error()
	for i, c := range msg {
		if c == '\n' {
			return msg[:i]
		}
	}
	return msg
}

// lookup returns the camera's running session, marking it requested, or
// nil.
func (s *Server) lookup(cam string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.sessions[cam]
	if se == nil || se.ctx.Err() != nil {
		return nil
	}
	se.last = time.Now()
	return se
}

// session returns the camera's running session, starting one when there is
// none.
func (s *Server) session(ctx context.Context, cam string) (*session, error) {
	if se := s.lookup(cam); se != nil {
		return se, nil
	}
	if len(s.o.Cameras) > 0 && !slices.Contains(s.o.Cameras, cam) {
		return nil, errUnknown
	}
	// Refuse cameras the cache does not know before creating anything.
	if _, err := s.cache.Stats(ctx, cam); err != nil && !errors.Is(err, cache.ErrEmpty) {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	if se := s.sessions[cam]; se != nil && se.ctx.Err() == nil {
		se.last = time.Now() // another request started it meanwhile
		return se, nil
	}
	dir, err := os.MkdirTemp(s.o.Dir, "chrysalis-hls-*")
	if err != nil {
		return nil, fmt.Errorf("hls: %w", err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	se := &session{camera: cam, dir: dir, ctx: sctx, cancel: cancel, last: time.Now(), done: make(chan struct{})}
	s.sessions[cam] = se
	s.wg.Add(2)
	go s.run(se)
	go s.idle(se)
	s.log.Debug("hls: stream started", "camera", cam, "dir", dir)
	return se, nil
}

// run runs the session's Stream and cleans up after it.
func (s *Server) run(se *session) {
	defer s.wg.Done()
	o := s.o.Options
	o.Logger = s.log
	err := Stream(se.ctx, s.cache, se.camera, se.dir, o)
	if err != nil && se.ctx.Err() == nil {
		s.log.Warn("hls: stream failed", "camera", se.camera, "err", err)
	}
	s.mu.Lock()
	se.err = err
	se.cancel()
	if s.sessions[se.camera] == se {
		delete(s.sessions, se.camera)
	}
	s.mu.Unlock()
	close(se.done)
	if err := os.RemoveAll(se.dir); err != nil {
		s.log.Warn("hls: removing the stream directory", "dir", se.dir, "err", err)
	}
	s.log.Debug("hls: stream stopped", "camera", se.camera)
}

// idle cancels the session after IdleTimeout without requests.
func (s *Server) idle(se *session) {
	defer s.wg.Done()
	check := max(s.o.IdleTimeout/4, 10*time.Millisecond)
	t := time.NewTicker(check)
	defer t.Stop()
	for {
		select {
		case <-se.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		idle := time.Since(se.last) > s.o.IdleTimeout
		if idle {
			// Under the lock: a request either touched it before, or
			// finds it cancelled and starts a new one.
			se.cancel()
		}
		s.mu.Unlock()
		if idle {
			s.log.Debug("hls: stream idle; stopping", "camera", se.camera)
			return
		}
	}
}
