// Package testrtsp serves an H.264 clip over RTSP on loopback for tests,
// with gortsplib (TCP only). Each PLAY gets the clip's access units from
// the first, once, paced like a camera; then the session stays open and
// silent until the client leaves or the server stops. So a client that
// plays receives exactly the clip, and a test knows what it should have.
package testrtsp

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"

	"github.com/chryscloud/chrysalis-go/internal/testclip"
)

// Path is the stream's path; the URL is rtsp://127.0.0.1:<port>/Path.
const Path = "clip"

// Server is a running RTSP server. Stop is registered with t.Cleanup.
type Server struct {
	Port int
	// Step is the interval between access units (default 40 ms: 25 fps).
	Step time.Duration

	t    testing.TB
	clip *testclip.Clip
	aus  [][][]byte // the clip's packets split into NAL units

	mu       sync.Mutex
	srv      *gortsplib.Server
	stream   *gortsplib.ServerStream
	media    *description.Media
	sessions map[*gortsplib.ServerSession]context.CancelFunc
	feeders  sync.WaitGroup

	plays atomic.Int64 // PLAY requests served
	sent  atomic.Int64 // access units sent, all sessions
	done  atomic.Int64 // sessions that were sent the whole clip
}

// Start serves clip (H.264 with avcC extradata, as from an MP4) on a free
// loopback port.
func Start(t testing.TB, clip *testclip.Clip) *Server {
	t.Helper()
	lsz, ok := clip.AVCC()
	if !ok {
		t.Fatalf("testrtsp serves H.264 from MP4 (avcC); got %s", clip.Codec)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{Port: port, Step: 40 * time.Millisecond, t: t, clip: clip}
	for _, p := range clip.Packets {
		s.aus = append(s.aus, testclip.NALUs(t, p.Data, lsz))
	}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the stream's rtsp:// URL.
func (s *Server) URL() string { return fmt.Sprintf("rtsp://127.0.0.1:%d/%s", s.Port, Path) }

// Plays is the number of PLAY requests served since Start.
func (s *Server) Plays() int64 { return s.plays.Load() }

// Sent is the number of access units sent since Start, all sessions.
func (s *Server) Sent() int64 { return s.sent.Load() }

// Finished is the number of sessions that were sent the whole clip.
func (s *Server) Finished() int64 { return s.done.Load() }

func (s *Server) start() {
	s.t.Helper()
	sps, pps := s.clip.ParamSets(s.t)
	s.media = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{
		PayloadTyp: 96, SPS: sps, PPS: pps, PacketizationMode: 1,
	}}}
	s.sessions = map[*gortsplib.ServerSession]context.CancelFunc{}
	srv := &gortsplib.Server{Handler: (*handler)(s), RTSPAddress: fmt.Sprintf("127.0.0.1:%d", s.Port)}
	if err := srv.Start(); err != nil {
		s.t.Fatalf("RTSP server on port %d: %v", s.Port, err)
	}
	s.mu.Lock()
	s.srv = srv
	s.stream = gortsplib.NewServerStream(srv, &description.Session{Medias: []*description.Media{s.media}})
	s.mu.Unlock()
}

// Stop closes the server and every connection (an outage, or the end), and
// waits for the senders; it is idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, stream := s.srv, s.stream
	s.srv, s.stream = nil, nil
	for _, cancel := range s.sessions {
		cancel()
	}
	s.mu.Unlock()
	if srv == nil {
		return
	}
	stream.Close()
	srv.Close()
	s.feeders.Wait()
}

// Restart serves again on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

type handler Server

func (h *handler) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return h.found()
}

func (h *handler) OnSetup(*gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return h.found()
}

func (h *handler) found() (*base.Response, *gortsplib.ServerStream, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, h.stream, nil
}

// OnPlay starts sending the clip to the session. The session queues what
// is written before its PLAY response is out.
func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	s := (*Server)(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil
	}
	if _, playing := s.sessions[ctx.Session]; playing {
		return &base.Response{StatusCode: base.StatusOK}, nil
	}
	fctx, cancel := context.WithCancel(context.Background())
	s.sessions[ctx.Session] = cancel
	s.plays.Add(1)
	s.feeders.Add(1)
	go func() {
		defer s.feeders.Done()
		s.feed(fctx, ctx.Session)
	}()
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cancel, ok := h.sessions[ctx.Session]; ok {
		cancel()
		delete(h.sessions, ctx.Session)
	}
}

// feed sends the clip's access units to ss, one every Step, with RTP
// timestamps from the clip's PTS (90 kHz).
func (s *Server) feed(ctx context.Context, ss *gortsplib.ServerSession) {
	enc, err := s.media.Formats[0].(*format.H264).CreateEncoder()
	if err != nil {
		s.t.Errorf("RTP H.264 encoder: %v", err)
		return
	}
	start := time.Now()
	for i, p := range s.clip.Packets {
		t := time.NewTimer(time.Until(start.Add(time.Duration(i) * s.Step)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		pkts, err := enc.Encode(s.aus[i])
		if err != nil {
			s.t.Errorf("RTP H.264 encode of packet %d: %v", i, err)
			return
		}
		ts := uint32(float64(p.PTS)*s.clip.TimeBase*90000 + 0.5)
		for _, rp := range pkts {
			rp.Timestamp = ts
			if err := ss.WritePacketRTP(s.media, rp); err != nil {
				return // the session is gone
			}
		}
		s.sent.Add(1)
	}
	s.done.Add(1)
}
