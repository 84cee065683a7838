package sink_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image/jpeg"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/sink"
)

// frameSet hands out fresh, pool-less ChImages over a few decoded frames,
// so a test can feed any number of images that sinks may release.
type frameSet []flow.Image

func (fs frameSet) get(i int) flow.Image {
	s := fs[i%len(fs)]
	return &chrysalis.ChImage{Camera: s.Camera, Time: s.Time.Add(time.Duration(i/len(fs)) * time.Second), ID: s.ID,
		Width: s.Width, Height: s.Height, Stride: s.Stride, Format: s.Format, Data: s.Data}
}

func smallFrames(t *testing.T) frameSet {
	t.Helper()
	f := loadClip(t, "clip720.mp4")
	return frameSet(f.images(t, chrysalis.CameraOptions{Width: 640, Height: 360}, 0, 24))
}

// runSink runs s on a new channel; stop closes the channel and returns
// Run's error.
func runSink(t *testing.T, s flow.Sink) (in chan flow.Image, stop func() error) {
	t.Helper()
	in = make(chan flow.Image)
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), in) }()
	var stopped bool
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		close(in)
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("sink did not return")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	return in, stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readParts reads n JPEG parts from an MJPEG response and decodes them.
func readParts(t *testing.T, resp *http.Response, n int) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/x-mixed-replace" || params["boundary"] == "" {
		t.Fatalf("content type %q: %v", resp.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	for i := 0; i < n; i++ {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if ct := p.Header.Get("Content-Type"); ct != "image/jpeg" {
			t.Fatalf("part %d: content type %q", i, ct)
		}
		img, err := jpeg.Decode(p)
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if b := img.Bounds(); b.Dx() != 640 || b.Dy() != 360 {
			t.Fatalf("part %d: %v", i, b)
		}
	}
}

func TestMJPEG(t *testing.T) {
	defer goleak.VerifyNone(t)
	frames := smallFrames(t)
	// WriteTimeout must outlast the stalled-client step below (a reader
	// reading 5 parts, 300 ms of production) on a loaded machine, so that
	// both clients are still watching when it counts them.
	const writeTimeout = 5 * time.Second
	srv := sink.NewMJPEGServer(sink.MJPEGOptions{Quality: 80, WriteTimeout: writeTimeout})
	// Small socket send buffers, so a client that stops reading blocks the
	// server's writes within one part.
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Listener = smallSendBuf{ts.Listener}
	ts.Start()
	defer ts.Close()
	defer srv.Close() // before ts.Close, which waits for streaming handlers
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	in, stop := runSink(t, srv.Sink("cam one"))
	get := func(path string) (int, []byte) {
		resp, err := client.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	t.Run("page", func(t *testing.T) {
		code, body := get("/")
		if code != 200 || !strings.Contains(string(body), `<img src="stream/cam%20one"`) {
			t.Fatalf("%d %s", code, body)
		}
		if code, _ := get("/stream/nope"); code != 404 {
			t.Fatalf("unknown stream: %d", code)
		}
	})

	t.Run("lazy snapshot", func(t *testing.T) {
		if code, _ := get("/snapshot/cam%20one.jpg"); code != http.StatusServiceUnavailable {
			t.Fatalf("snapshot before any frame: %d", code)
		}
		for i := 0; i < 10; i++ {
			in <- frames.get(i)
		}
		waitFor(t, "10 images", func() bool { return srv.Stats("cam one").Received == 10 })
		if st := srv.Stats("cam one"); st.Encoded != 0 {
			t.Fatalf("nobody watching, yet %+v", st)
		}
		code, body := get("/snapshot/cam%20one.jpg")
		if code != 200 {
			t.Fatalf("snapshot: %d", code)
		}
		if _, err := jpeg.Decode(bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		get("/snapshot/cam%20one.jpg")
		if st := srv.Stats("cam one"); st.Encoded != 1 {
			t.Fatalf("two snapshots of one frame: %d encodes, want 1", st.Encoded)
		}
	})

	// The producer sends as fast as it can for the whole subtest.
	produce := func(ctx context.Context, from int) (sent chan int) {
		sent = make(chan int, 1)
		go func() {
			n := 0
			defer func() { sent <- n }()
			for {
				select {
				case in <- frames.get(from + n):
					n++
				case <-ctx.Done():
					return
				}
			}
		}()
		return sent
	}

	t.Run("stalled client", func(t *testing.T) {
		// Baseline consumption rate with nobody watching.
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		base := <-produce(ctx, 0)
		cancel()

		// A client that never reads, with a tiny receive buffer.
		stalled := dialStalled(t, ts)
		defer stalled.Close()
		waitFor(t, "the stalled watcher", func() bool { return srv.Stats("cam one").Watchers == 1 })
		stalledAt := time.Now()

		// Produce at full rate while a normal client reads 5 fresh frames,
		// for at least 300 ms.
		ctx, cancel = context.WithCancel(context.Background())
		defer cancel()
		before := srv.Stats("cam one")
		began := time.Now()
		sent := produce(ctx, 1000)
		rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer rcancel()
		req, _ := http.NewRequestWithContext(rctx, "GET", ts.URL+"/stream/cam%20one", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		readParts(t, resp, 5)
		drained := make(chan struct{})
		go func() { // keep reading, as a live viewer does
			defer close(drained)
			io.Copy(io.Discard, resp.Body)
		}()
		time.Sleep(300*time.Millisecond - time.Since(began))
		cancel()
		n := <-sent
		el := time.Since(began)
		// The last image sent may still be on its way into the counter.
		waitFor(t, "the sink to count every image", func() bool { return srv.Stats("cam one").Received-before.Received == int64(n) })
		after := srv.Stats("cam one")
		rate, baseRate := float64(n)/el.Seconds(), float64(base)/0.3
		t.Logf("sink consumed %.0f images/s with a stalled and a reading client (%.0f/s with nobody watching); %d encodes, %d parts sent",
			rate, baseRate, after.Encoded-before.Encoded, after.Parts)
		// A sink held up by the stalled client would stop taking images once
		// its input edge filled: a few dozen in 300 ms. The floor is an order
		// of magnitude above that, and far below the baseline, so a loaded
		// machine (the race detector, CI running packages in parallel) does
		// not trip it (a ratio to the baseline, 1/10, failed once there at
		// 0.097). How fast the sink is belongs to the benchmarks.
		if rate < 1000 {
			t.Fatalf("sink slowed down: %.0f images/s vs %.0f without clients", rate, baseRate)
		}
		if after.Watchers != 2 {
			t.Fatalf("%d watchers %v after the stalled one came (WriteTimeout %v), want the stalled one and the reader",
				after.Watchers, time.Since(stalledAt).Round(time.Millisecond), writeTimeout)
		}

		// The stalled client's handler is blocked writing to it: the write
		// deadline drops it, while the reader stays.
		waitFor(t, "WriteTimeout to drop the stalled client", func() bool { return srv.Stats("cam one").Watchers == 1 })
		t.Logf("stalled client dropped %v after streaming began (WriteTimeout %v)", time.Since(began).Round(10*time.Millisecond), writeTimeout)

		// Close cuts a handler blocked in a write at once, without waiting
		// for its WriteTimeout.
		stalled2 := dialStalled(t, ts)
		defer stalled2.Close()
		waitFor(t, "the second stalled watcher", func() bool { return srv.Stats("cam one").Watchers == 2 })
		for i := 0; i < 20; i++ { // enough fresh parts to block it
			in <- frames.get(2000 + i)
			time.Sleep(5 * time.Millisecond)
		}
		closed := time.Now()
		srv.Close()
		waitFor(t, "handlers to return", func() bool { return srv.Stats("cam one").Watchers == 0 })
		if d := time.Since(closed); d > time.Second {
			t.Fatalf("Close took %v to end the handlers", d)
		} else {
			t.Logf("Close ended both handlers in %v", d.Round(time.Millisecond))
		}
		<-drained
		// A closed server still serves snapshots; the sink still consumes.
		in <- frames.get(5000)
		if code, _ := get("/snapshot/cam%20one.jpg"); code != 200 {
			t.Fatalf("snapshot after Close: %d", code)
		}
		if code, _ := get("/stream/cam%20one"); code != http.StatusServiceUnavailable {
			t.Fatalf("stream after Close: %d", code)
		}
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// smallSendBuf shrinks the send buffer of accepted connections.
type smallSendBuf struct{ net.Listener }

func (l smallSendBuf) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// dialStalled requests the stream and never reads the response.
func dialStalled(t *testing.T, ts *httptest.Server) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /stream/cam%%20one HTTP/1.1\r\nHost: x\r\n\r\n")
	return c
}

// MaxFPS caps the encodes of a watched stream.
func TestMJPEGMaxFPS(t *testing.T) {
	defer goleak.VerifyNone(t)
	frames := smallFrames(t)
	srv := sink.NewMJPEGServer(sink.MJPEGOptions{MaxFPS: 10})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	defer srv.Close()
	in, stop := runSink(t, srv.Sink("cam"))
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /stream/cam HTTP/1.1\r\nHost: x\r\n\r\n")
	go io.Copy(io.Discard, bufio.NewReader(conn))
	waitFor(t, "the watcher", func() bool { return srv.Stats("cam").Watchers == 1 })
	start := time.Now()
	for i := 0; time.Since(start) < time.Second; i++ {
		in <- frames.get(i)
		time.Sleep(2 * time.Millisecond)
	}
	st := srv.Stats("cam")
	t.Logf("1 s at ~%d images/s, MaxFPS 10: %d encodes", st.Received, st.Encoded)
	if st.Encoded < 3 || st.Encoded > 12 {
		t.Fatalf("%d encodes in 1 s with MaxFPS 10", st.Encoded)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	conn.Close()
}
