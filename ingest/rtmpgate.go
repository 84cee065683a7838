package ingest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/chryscloud/chrysalis-go/internal/redact"
)

// FFmpeg's RTMP listener (listen=1) takes a push to any app and stream
// name: it only logs a warning when they differ from its URL's. A push to
// /evil/wrongkey was ingested as the camera and changed its codec. The gate
// is the RTMP server the camera reaches: it answers the handshake itself,
// reads the client's connect (app) and publish (stream name) commands, and
// forwards the connection to FFmpeg, listening on a loopback port, only
// when both match. A client that sends nothing, random bytes or another
// path never reaches FFmpeg.

// rtmpHandshakeSize is the size of C1/S1/C2/S2.
const rtmpHandshakeSize = 1536

// Bounds on what a client may send before its publish command.
const (
	gateMaxCommand  = 64 << 10 // bytes of one message
	gateMaxMessages = 64
)

// rtmpGate accepts pushers on the configured address and forwards the one
// whose app and stream match to FFmpeg at inner.
type rtmpGate struct {
	ln          net.Listener
	inner       string // host:port FFmpeg listens on
	app, stream string // expected; stream includes ?key=... when a key is set
	timeout     time.Duration
	dialFor     time.Duration // how long to wait for FFmpeg to listen
	log         *slog.Logger
	refused     func()
}

// rtmpTarget splits rtmp://host:port/app/stream into the listen address,
// app and stream name.
func rtmpTarget(input string) (addr, app, stream string, err error) {
	u, err := url.Parse(input)
	if err != nil {
		return "", "", "", fmt.Errorf("listen URL: %w", err)
	}
	p := strings.Trim(u.Path, "/")
	app, stream, _ = strings.Cut(p, "/")
	if app == "" || stream == "" {
		return "", "", "", fmt.Errorf("listen URL %s: want rtmp://host:port/APP/STREAM", redact.URL(input))
	}
	if u.RawQuery != "" {
		stream += "?" + u.RawQuery
	}
	addr = u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "1935")
	}
	return addr, app, stream, nil
}

// startRTMPGate listens on input's address and returns the gate and the
// URL FFmpeg should listen on instead (loopback, a free port).
func startRTMPGate(input, key string, timeout, dialFor time.Duration, log *slog.Logger, refused func()) (*rtmpGate, string, error) {
	addr, app, stream, err := rtmpTarget(input)
	if err != nil {
		return nil, "", err
	}
	if key != "" {
		stream += "?key=" + key
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	// A free loopback port for FFmpeg. It is free again between this Close
	// and FFmpeg's bind; another process taking it then makes FFmpeg's
	// open fail, and the input is retried.
	il, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		return nil, "", err
	}
	inner := il.Addr().String()
	il.Close()
	appPath, _, _ := strings.Cut(stream, "?")
	g := &rtmpGate{ln: ln, inner: inner, app: app, stream: stream, timeout: timeout, dialFor: dialFor, log: log, refused: refused}
	return g, "rtmp://" + inner + "/" + app + "/" + appPath, nil
}

// run accepts clients until ctx ends; every goroutine it starts has exited
// when it returns.
func (g *rtmpGate) run(ctx context.Context) {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { g.ln.Close() })
	defer stop()
	busy := make(chan struct{}, 1) // one pusher at a time, like FFmpeg
	for {
		c, err := g.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			g.log.Warn("rtmp listener: accept failed", "err", err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.serve(ctx, c, busy)
		}()
	}
	g.ln.Close()
	wg.Wait()
}

// serve checks one client and, when it pushes to our app and stream,
// proxies it to FFmpeg until either side closes or ctx ends.
func (g *rtmpGate) serve(ctx context.Context, c net.Conn, busy chan struct{}) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	remote := c.RemoteAddr().String()
	refuse := func(why string, args ...any) {
		g.refused()
		g.log.Warn("rtmp listener: refused a client: "+why, append([]any{"remote", remote}, args...)...)
	}
	c.SetDeadline(time.Now().Add(g.timeout))
	br := bufio.NewReader(c)
	c0c1, err := serverHandshake(br, c)
	if err != nil {
		refuse("bad handshake", "err", err)
		return
	}
	cr := &chunkReader{r: br, size: 128, streams: map[uint32]*chunkStream{}}
	cmd, err := cr.command()
	if err != nil {
		refuse("no connect command", "err", err)
		return
	}
	if cmd.name != "connect" || cmd.app != g.app {
		refuse("wrong app", "command", cmd.name, "app", cmd.app, "want", g.app)
		return
	}
	select {
	case busy <- struct{}{}:
		defer func() { <-busy }()
	default:
		refuse("another pusher is connected")
		return
	}
	f, err := g.dialFFmpeg(ctx, c0c1)
	if err != nil {
		refuse("ffmpeg not listening", "err", err)
		return
	}
	defer f.Close()
	stopF := context.AfterFunc(ctx, func() { f.Close() })
	defer stopF()
	// FFmpeg's answers go straight back; the client's commands are
	// checked until publish.
	back := make(chan struct{})
	go func() {
		defer close(back)
		io.Copy(c, f)
		c.Close()
	}()
	defer func() { f.Close(); c.Close(); <-back }()
	if _, err := f.Write(cr.raw); err != nil {
		return
	}
	cr.raw = nil
	for {
		cmd, err := cr.command()
		if err != nil {
			refuse("no publish command", "err", err)
			return
		}
		if _, err := f.Write(cr.raw); err != nil {
			return
		}
		cr.raw = cr.raw[:0]
		if cmd.name == "play" {
			refuse("play requested; this listener only takes a push")
			return
		}
		if cmd.name != "publish" {
			continue
		}
		if cmd.stream != g.stream {
			refuse("wrong stream name or key", "stream", redactKey(cmd.stream), "want", redactKey(g.stream))
			return
		}
		break
	}
	c.SetDeadline(time.Time{}) // FFmpeg's ReadTimeout watches the stream from here
	g.log.Debug("rtmp listener: pusher accepted", "remote", remote)
	if br.Buffered() > 0 {
		b, _ := br.Peek(br.Buffered())
		if _, err := f.Write(b); err != nil {
			return
		}
		br.Discard(len(b))
	}
	io.Copy(f, ackReader{c, quickAcker(c)})
}

// ackReader reads the pusher's connection with TCP_QUICKACK set before
// every read. Without it a push stalled for about 40 ms about every MB:
// once the gate forwards FFmpeg's "bytes read" report to the pusher, Linux
// treats the connection as interactive and holds its ACKs back (up to
// its 40 ms delayed-ACK timer) to ride on data we would send, while a
// pusher that leaves Nagle's algorithm on (the ffmpeg CLI does) holds its
// next packet until that ACK comes. At 1080p25 and 5 Mbit/s that was one
// packet in 60 arriving a frame late (TestRTMPPushHasNoACKStalls).
type ackReader struct {
	c        net.Conn
	quickAck func()
}

func (r ackReader) Read(p []byte) (int, error) {
	r.quickAck()
	return r.c.Read(p)
}

// redactKey hides a ?key= value in a stream name for logs.
func redactKey(s string) string {
	if i := strings.Index(s, "?"); i >= 0 {
		return s[:i] + "?xxxxx"
	}
	return s
}

// dialFFmpeg connects to FFmpeg's listener (waiting up to dialFor for it to
// listen again after a previous pusher) and replays the client's handshake.
func (g *rtmpGate) dialFFmpeg(ctx context.Context, c0c1 []byte) (net.Conn, error) {
	deadline := time.Now().Add(g.dialFor)
	var d net.Dialer
	for {
		f, err := d.DialContext(ctx, "tcp", g.inner)
		if err == nil {
			f.SetDeadline(time.Now().Add(g.timeout))
			if err := clientHandshake(f, c0c1); err != nil {
				f.Close()
				return nil, err
			}
			f.SetDeadline(time.Time{})
			return f, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// serverHandshake answers the client's C0/C1 with S0/S1/S2 and reads C2
// (the plain handshake: FFmpeg and OBS clients accept it). It returns
// C0+C1 for replaying to FFmpeg.
func serverHandshake(r io.Reader, w io.Writer) ([]byte, error) {
	c0c1 := make([]byte, 1+rtmpHandshakeSize)
	if _, err := io.ReadFull(r, c0c1[:1]); err != nil {
		return nil, err
	}
	if c0c1[0] != 3 {
		return nil, fmt.Errorf("RTMP version %d, want 3", c0c1[0])
	}
	if _, err := io.ReadFull(r, c0c1[1:]); err != nil {
		return nil, err
	}
	s := make([]byte, 1+2*rtmpHandshakeSize)
	s[0] = 3
	rand.Read(s[9 : 1+rtmpHandshakeSize]) // S1: time 0, zero 0, random
	copy(s[1+rtmpHandshakeSize:], c0c1[1:])
	if _, err := w.Write(s); err != nil {
		return nil, err
	}
	c2 := make([]byte, rtmpHandshakeSize)
	if _, err := io.ReadFull(r, c2); err != nil {
		return nil, err
	}
	return c0c1, nil
}

// clientHandshake replays the client's C0/C1 to FFmpeg, reads S0/S1/S2 and
// answers C2 = S1.
func clientHandshake(f net.Conn, c0c1 []byte) error {
	if _, err := f.Write(c0c1); err != nil {
		return err
	}
	s := make([]byte, 1+2*rtmpHandshakeSize)
	if _, err := io.ReadFull(f, s); err != nil {
		return err
	}
	_, err := f.Write(s[1 : 1+rtmpHandshakeSize])
	return err
}

// chunkStream is the state of one RTMP chunk stream id.
type chunkStream struct {
	ts, length uint32
	typ        uint8
	extended   bool
	msg        []byte
}

// chunkReader reassembles the client's messages from the chunk stream and
// keeps the raw bytes it read (raw) for forwarding.
type chunkReader struct {
	r        *bufio.Reader
	size     uint32
	streams  map[uint32]*chunkStream
	raw      []byte
	messages int
}

func (cr *chunkReader) read(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(cr.r, b); err != nil {
		return nil, err
	}
	cr.raw = append(cr.raw, b...)
	return b, nil
}

// message returns the next complete message.
func (cr *chunkReader) message() (typ uint8, body []byte, err error) {
	for {
		b, err := cr.read(1)
		if err != nil {
			return 0, nil, err
		}
		fmtc, csid := b[0]>>6, uint32(b[0]&0x3f)
		switch csid {
		case 0:
			x, err := cr.read(1)
			if err != nil {
				return 0, nil, err
			}
			csid = 64 + uint32(x[0])
		case 1:
			x, err := cr.read(2)
			if err != nil {
				return 0, nil, err
			}
			csid = 64 + uint32(x[0]) + 256*uint32(x[1])
		}
		cs := cr.streams[csid]
		if cs == nil {
			if fmtc != 0 {
				return 0, nil, fmt.Errorf("chunk stream %d starts without a full header", csid)
			}
			if len(cr.streams) >= 16 {
				return 0, nil, errors.New("too many chunk streams")
			}
			cs = &chunkStream{}
			cr.streams[csid] = cs
		}
		hlen := [4]int{11, 7, 3, 0}[fmtc]
		h, err := cr.read(hlen)
		if err != nil {
			return 0, nil, err
		}
		if fmtc < 3 {
			ts := uint32(h[0])<<16 | uint32(h[1])<<8 | uint32(h[2])
			cs.extended = ts == 0xffffff
			if fmtc < 2 {
				cs.length = uint32(h[3])<<16 | uint32(h[4])<<8 | uint32(h[5])
				cs.typ = h[6]
				if cs.length > gateMaxCommand {
					return 0, nil, fmt.Errorf("message of %d bytes before publish", cs.length)
				}
			}
		}
		if cs.extended {
			if _, err := cr.read(4); err != nil {
				return 0, nil, err
			}
		}
		n := min(cr.size, cs.length-uint32(len(cs.msg)))
		body, err := cr.read(int(n))
		if err != nil {
			return 0, nil, err
		}
		cs.msg = append(cs.msg, body...)
		if uint32(len(cs.msg)) < cs.length {
			continue
		}
		msg := cs.msg
		cs.msg = nil
		if cr.messages++; cr.messages > gateMaxMessages {
			return 0, nil, errors.New("too many messages before publish")
		}
		if cs.typ == 1 && len(msg) >= 4 { // Set Chunk Size
			cr.size = binary.BigEndian.Uint32(msg) & 0x7fffffff
			if cr.size == 0 || cr.size > 1<<24 {
				return 0, nil, fmt.Errorf("chunk size %d", cr.size)
			}
		}
		return cs.typ, msg, nil
	}
}

// rtmpCommand is what the gate reads from a command message.
type rtmpCommand struct {
	name   string
	app    string // connect
	stream string // publish, play
}

// command returns the next AMF0 command (messages of other types are
// skipped).
func (cr *chunkReader) command() (rtmpCommand, error) {
	for {
		typ, body, err := cr.message()
		if err != nil {
			return rtmpCommand{}, err
		}
		switch typ {
		case 17: // AMF3 command: a format byte, then AMF0
			if len(body) == 0 {
				continue
			}
			body = body[1:]
		case 20:
		default:
			continue
		}
		return parseCommand(body)
	}
}

// parseCommand reads an AMF0 command: name, transaction id, command
// object, then for publish/play the stream name.
func parseCommand(b []byte) (rtmpCommand, error) {
	d := amfReader{b: b}
	var c rtmpCommand
	v, err := d.value(0)
	if err != nil {
		return c, err
	}
	name, ok := v.(string)
	if !ok {
		return c, errors.New("command without a name")
	}
	c.name = name
	if _, err := d.value(0); err != nil { // transaction id
		return c, err
	}
	obj, err := d.value(0)
	if err != nil {
		return c, err
	}
	switch name {
	case "connect":
		if m, ok := obj.(map[string]any); ok {
			c.app, _ = m["app"].(string)
		}
		c.app = strings.TrimSuffix(c.app, "/")
	case "publish", "play":
		v, err := d.value(0)
		if err != nil {
			return c, err
		}
		c.stream, _ = v.(string)
	}
	return c, nil
}

// amfReader decodes the AMF0 values a command holds.
type amfReader struct{ b []byte }

func (d *amfReader) take(n int) ([]byte, error) {
	if n < 0 || n > len(d.b) {
		return nil, io.ErrUnexpectedEOF
	}
	x := d.b[:n]
	d.b = d.b[n:]
	return x, nil
}

func (d *amfReader) str(lenBytes int) (string, error) {
	l, err := d.take(lenBytes)
	if err != nil {
		return "", err
	}
	n := 0
	for _, x := range l {
		n = n<<8 | int(x)
	}
	s, err := d.take(n)
	return string(s), err
}

func (d *amfReader) value(depth int) (any, error) {
	if depth > 8 {
		return nil, errors.New("AMF nested too deep")
	}
	t, err := d.take(1)
	if err != nil {
		return nil, err
	}
	switch t[0] {
	case 0x00: // number
		_, err := d.take(8)
		return nil, err
	case 0x01: // boolean
		_, err := d.take(1)
		return nil, err
	case 0x02: // string
		return d.str(2)
	case 0x0c: // long string
		return d.str(4)
	case 0x05, 0x06: // null, undefined
		return nil, nil
	case 0x08: // ECMA array: a count, then like an object
		if _, err := d.take(4); err != nil {
			return nil, err
		}
		fallthrough
	case 0x03: // object
		m := map[string]any{}
		for {
			k, err := d.str(2)
			if err != nil {
				return nil, err
			}
			if k == "" {
				end, err := d.take(1)
				if err != nil {
					return nil, err
				}
				if end[0] != 0x09 {
					return nil, errors.New("AMF object without its end marker")
				}
				return m, nil
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
	}
	return nil, fmt.Errorf("AMF type %#x not expected in a command", t[0])
}
