package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
)

// The grid page (static/grid.html) shows every camera as a tile that fits
// the window: a recent image, its age and the camera's fps, and the
// detection boxes Options.Detections provides. It polls /api/tiles once a
// second and reloads a tile's image only when its key changes, so sixteen
// cameras cost sixteen small JSON entries a second and one image per new
// keyframe each (or one preview snapshot a second when the caller feeds the
// MJPEG server).
//
//	/grid                   the grid page (also / with several cameras)
//	/api/tiles              {"tiles": [TileInfo...]}
//	/api/tile/<camera>?w=W  image/jpeg: the newest keyframe, W pixels wide

// Detection is a box drawn over a camera's tile, in coordinates relative
// to the frame: X, Y (top left), W and H in 0..1.
type Detection struct {
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	W     float64 `json:"w"`
	H     float64 `json:"h"`
	Label string  `json:"label,omitempty"`
	Score float64 `json:"score,omitempty"`
}

// TileInfo is one camera of /api/tiles.
type TileInfo struct {
	Camera string `json:"camera"`
	// TimeMS is the newest cached packet's time (unix ms), AgeMS how old
	// it is; both 0 when the camera has no frames (see Error).
	TimeMS int64 `json:"time_ms"`
	AgeMS  int64 `json:"age_ms"`
	// FPS is the camera's recent packet rate (0 until two samples a second
	// apart).
	FPS float64 `json:"fps"`
	// Image is the tile image's URL, relative to the page; Key changes
	// when the image does.
	Image string `json:"image"`
	Key   string `json:"key"`
	// Detections are Options.Detections' boxes for the camera.
	Detections []Detection `json:"detections,omitempty"`
	Error      string      `json:"error,omitempty"`
}

// Tile image widths are clamped to this range and rounded to tileStep, so
// window sizes share cached images.
const (
	minTileWidth, maxTileWidth, tileStep = 160, 1280, 80
	defaultTileWidth                     = 320
)

// tiles is the grid's server state: the fps samples and, per camera, a
// keyframes-only Camera and its newest JPEG.
type tiles struct {
	mu     sync.Mutex
	fps    map[string]*fpsSample
	shots  map[string]*tileShot
	closed bool
}

type fpsSample struct {
	number, ms int64 // the sample: packet number and time
	fps        float64
}

type tileShot struct {
	mu    sync.Mutex
	cam   *chrysalis.Camera // keyframes only, width wide
	width int
	jpeg  []byte
	ts    int64 // unix ms of the frame
	done  bool  // shut by close: open no camera
}

func newTiles() *tiles {
	return &tiles{fps: map[string]*fpsSample{}, shots: map[string]*tileShot{}}
}

// close releases the decoders; later tile requests are refused.
func (t *tiles) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for _, s := range t.shots {
		s.mu.Lock()
		s.shut()
		s.mu.Unlock()
	}
}

// shut closes the shot's camera for good; s.mu is held.
func (s *tileShot) shut() {
	s.done = true
	if s.cam != nil {
		s.cam.Close()
		s.cam = nil
	}
}

// rate updates the camera's fps from its newest packet's number and time.
func (t *tiles) rate(cam string, p cache.Packet) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.fps[cam]
	if s == nil {
		s = &fpsSample{number: p.Number, ms: int64(p.ID.MS)}
		t.fps[cam] = s
		return 0
	}
	dms := int64(p.ID.MS) - s.ms
	switch {
	case p.Number < s.number || dms < 0: // a restarted ingest: start over
		*s = fpsSample{number: p.Number, ms: int64(p.ID.MS)}
	case dms >= 1000:
		s.fps = float64(p.Number-s.number) * 1000 / float64(dms)
		s.number, s.ms = p.Number, int64(p.ID.MS)
	}
	return s.fps
}

func (w *Watch) gridRoutes(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	mux.HandleFunc("GET /grid", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(rw, r, static, "grid.html")
	})
	mux.HandleFunc("GET /api/tiles", w.serveTiles)
	mux.HandleFunc("GET /api/tile/{camera}", w.serveTile)
}

func (w *Watch) serveTiles(rw http.ResponseWriter, r *http.Request) {
	now := time.Now()
	out := make([]TileInfo, 0, len(w.o.Cameras))
	for _, cam := range w.o.Cameras {
		out = append(out, w.tileInfo(r.Context(), cam, now))
	}
	writeJSON(rw, struct {
		Tiles []TileInfo `json:"tiles"`
	}{out})
}

func (w *Watch) tileInfo(ctx context.Context, cam string, now time.Time) TileInfo {
	ti := TileInfo{Camera: cam, Image: "api/tile/" + url.PathEscape(cam)}
	if w.o.Detections != nil {
		ti.Detections = w.o.Detections(cam)
	}
	last, err := w.o.Client.Cache().RevRange(ctx, cam, cache.MaxID, cache.MinID, 1)
	switch {
	case errors.Is(err, cache.ErrUnknownCamera) || errors.Is(err, cache.ErrEmpty) || (err == nil && len(last) == 0):
		ti.Error = "no frames yet"
		return ti
	case err != nil:
		ti.Error = err.Error()
		return ti
	}
	p := last[0]
	ti.TimeMS = int64(p.ID.MS)
	ti.AgeMS = max(0, now.UnixMilli()-ti.TimeMS)
	ti.FPS = w.tiles.rate(cam, p)
	if !w.ownMJPEG {
		if st := w.mjpeg.Stats(cam); st.Received > 0 {
			// The caller's graph feeds the preview: its newest image, at
			// most as often as the page polls.
			ti.Image = "mjpeg/snapshot/" + url.PathEscape(cam) + ".jpg"
			ti.Key = "m" + strconv.FormatInt(st.Received, 10)
			return ti
		}
	}
	// The newest keyframe: a new image once per keyframe (the number ingest
	// gives keyframes), or once a second when the writer numbers none.
	if p.KeyframeNumber > 0 {
		ti.Key = "k" + strconv.FormatInt(p.KeyframeNumber, 10)
	} else {
		ti.Key = "s" + strconv.FormatInt(ti.TimeMS/1000, 10)
	}
	return ti
}

// serveTile answers the camera's newest keyframe as a JPEG ?w= pixels wide
// (default 320), decoding only when a newer keyframe has arrived since the
// last request.
func (w *Watch) serveTile(rw http.ResponseWriter, r *http.Request) {
	cam, ok := w.camera(rw, r)
	if !ok {
		return
	}
	width := defaultTileWidth
	if s := r.URL.Query().Get("w"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			w.httpError(rw, r, badf("bad w %q: want a width in pixels", s))
			return
		}
		width = n
	}
	width = min(max(width, minTileWidth), maxTileWidth) / tileStep * tileStep

	w.tiles.mu.Lock()
	if w.tiles.closed {
		w.tiles.mu.Unlock()
		http.Error(rw, "watch stopped", http.StatusServiceUnavailable)
		return
	}
	s := w.tiles.shots[cam]
	if s == nil {
		s = &tileShot{}
		w.tiles.shots[cam] = s
	}
	w.tiles.mu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done { // closed between the check above and here
		http.Error(rw, "watch stopped", http.StatusServiceUnavailable)
		return
	}
	if s.cam == nil || s.width != width {
		if s.cam != nil {
			s.cam.Close()
		}
		s.cam = w.o.Client.Camera(cam, chrysalis.CameraOptions{Format: chrysalis.RGB24, Width: width,
			KeyframesOnly: true, Logger: w.log})
		s.width, s.jpeg = width, nil
	}
	img, err := s.cam.Latest(r.Context())
	if err != nil {
		w.httpError(rw, r, err)
		return
	}
	if img != nil { // a newer keyframe
		var b bytes.Buffer
		err := jpeg.Encode(&b, img.ToRGBA(), &jpeg.Options{Quality: 75})
		s.ts = img.TimestampMS()
		img.Release()
		if err != nil {
			w.httpError(rw, r, fmt.Errorf("tile: %w", err))
			return
		}
		s.jpeg = b.Bytes()
	}
	if s.jpeg == nil {
		http.Error(rw, "no frame yet", http.StatusServiceUnavailable)
		return
	}
	h := rw.Header()
	h.Set("Content-Type", "image/jpeg")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(s.jpeg)))
	h.Set("X-Frame-Timestamp", strconv.FormatInt(s.ts, 10))
	rw.Write(s.jpeg)
}
