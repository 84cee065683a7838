package watch

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/record"
)

// The recording panel (package record): each camera's storage switch, with
// a button to flip it, whether a segment is being written, and the last
// segments as links. Endpoints:
//
//	GET  /api/record                          {"enabled": true, "cameras": [RecordState...]}
//	POST /api/record/<camera>                 body {"on": true|false} (Content-Type
//	                                          application/json): sets the switch
//	GET  /api/record/<camera>/segments/<file> a segment (video/mp4)

// DefaultRecordSegments is how many of the last segments the page lists.
const DefaultRecordSegments = 10

// RecordState is one camera's entry of GET /api/record.
type RecordState struct {
	Camera string `json:"camera"`
	// Switch is the storage switch: "on", "off", "unset", or "" when
	// there is none (a cache other than Redis, no Options.RecordSwitch).
	Switch string `json:"switch"`
	// Writing: a segment is open in the archive (a recorder is writing).
	Writing bool `json:"writing"`
	// Segments are the last finished segments, oldest first.
	Segments []RecordSegment `json:"segments"`
	// Error reports what could not be read.
	Error string `json:"error,omitempty"`
}

// RecordSegment is a segment as the page lists it.
type RecordSegment struct {
	File   string    `json:"file"`
	URL    string    `json:"url"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Frames int64     `json:"frames"`
	Size   int64     `json:"size"`
}

// recordSwitch is the switch the page reads and sets, or nil.
func (w *Watch) recordSwitch() record.Switch {
	if w.o.RecordSwitch != nil {
		return w.o.RecordSwitch
	}
	if rc, ok := w.o.Client.Cache().(*rediscache.Cache); ok {
		return record.RedisSwitch(rc.Client())
	}
	return nil
}

func (w *Watch) recordRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/record", w.serveRecord)
	mux.HandleFunc("POST /api/record/{camera}", w.serveRecordSwitch)
	mux.HandleFunc("GET /api/record/{camera}/segments/{file}", w.serveRecordSegment)
}

func (w *Watch) serveRecord(rw http.ResponseWriter, r *http.Request) {
	sw := w.recordSwitch()
	out := struct {
		Enabled bool          `json:"enabled"`
		Cameras []RecordState `json:"cameras"`
	}{Enabled: sw != nil || w.o.Archive != "", Cameras: []RecordState{}}
	for _, cam := range w.o.Cameras {
		st := RecordState{Camera: cam, Segments: []RecordSegment{}}
		var errs []error
		if sw != nil {
			on, ok, err := sw.Get(r.Context(), cam)
			switch {
			case err != nil:
				errs = append(errs, err)
			case !ok:
				st.Switch = "unset"
			case on:
				st.Switch = "on"
			default:
				st.Switch = "off"
			}
		}
		if w.o.Archive != "" {
			dir := filepath.Join(w.o.Archive, cam)
			parts, _ := filepath.Glob(filepath.Join(dir, "."+cam+"_*.mp4.*.part"))
			st.Writing = len(parts) > 0
			segs, err := record.List(w.o.Archive, cam)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			n := w.o.RecordSegments
			if n <= 0 {
				n = DefaultRecordSegments
			}
			for _, s := range segs[max(0, len(segs)-n):] {
				name := filepath.Base(s.Path)
				st.Segments = append(st.Segments, RecordSegment{File: name, Start: s.Start, End: s.End, Frames: s.Frames,
					Size: s.Size, URL: "api/record/" + url.PathEscape(cam) + "/segments/" + url.PathEscape(name)})
			}
		}
		if err := errors.Join(errs...); err != nil {
			st.Error = err.Error()
		}
		out.Cameras = append(out.Cameras, st)
	}
	writeJSON(rw, out)
}

// serveRecordSwitch sets a camera's switch. It wants a JSON body, which a
// cross-site form cannot send without the browser asking first (CORS), so
// another web page cannot flip it through the user's browser.
func (w *Watch) serveRecordSwitch(rw http.ResponseWriter, r *http.Request) {
	cam, ok := w.camera(rw, r)
	if !ok {
		return
	}
	sw := w.recordSwitch()
	if sw == nil {
		http.Error(rw, "no storage switch: the cache is not Redis", http.StatusNotImplemented)
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		http.Error(rw, "want Content-Type application/json", http.StatusUnsupportedMediaType)
		return
	}
	var body struct {
		On *bool `json:"on"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(rw, r.Body, 1024)).Decode(&body); err != nil || body.On == nil {
		http.Error(rw, `want a body {"on": true|false}`, http.StatusBadRequest)
		return
	}
	if err := sw.Set(r.Context(), cam, *body.On); err != nil {
		w.httpError(rw, r, fmt.Errorf("setting the switch of %q: %w", cam, err))
		return
	}
	writeJSON(rw, struct {
		Camera string `json:"camera"`
		On     bool   `json:"on"`
	}{cam, *body.On})
}

func (w *Watch) serveRecordSegment(rw http.ResponseWriter, r *http.Request) {
	cam, ok := w.camera(rw, r)
	if !ok {
		return
	}
	name := r.PathValue("file")
	if w.o.Archive == "" {
		http.Error(rw, "no archive", http.StatusNotFound)
		return
	}
	// Only a finished segment the archive lists: no other file, no path.
	segs, _ := record.Segments(filepath.Join(w.o.Archive, cam), cam)
	i := slices.IndexFunc(segs, func(s record.Segment) bool { return filepath.Base(s.Path) == name })
	if i < 0 {
		http.Error(rw, fmt.Sprintf("no segment %q of camera %q", name, cam), http.StatusNotFound)
		return
	}
	rw.Header().Set("Content-Type", "video/mp4")
	http.ServeFile(rw, r, segs[i].Path)
}
