package media

import (
	"encoding/json"
	"image"
	"time"
)

// Detection is one object a model found in a frame.
type Detection struct {
	// Box is the object's bounding box in the pixels of the image the
	// model saw (see Detections.Width and Height).
	Box image.Rectangle
	// Label names the class ("person", "face", ...).
	Label string `json:"label"`
	// Score is the model's confidence; its scale is the model's (e.g. the
	// SVM margin of a HOG detector). 0 when the model gives none.
	Score float64 `json:"score"`
}

// Detections is the output of one model on one frame.
type Detections struct {
	// Model names the model that ran ("hog-people", "haar-frontalface").
	Model string `json:"model"`
	// Latency is how long the model took on this frame.
	Latency time.Duration `json:"latency_ns"`
	// Width and Height are the size of the image the boxes refer to (the
	// model's input, which may be a resized branch of the camera).
	Width  int `json:"width"`
	Height int `json:"height"`
	// Objects are the detections, possibly none.
	Objects []Detection `json:"objects"`
}

// ScaledTo returns the detections with boxes mapped to a w x h image of
// the same scene (e.g. the full-size frame of a detector that ran on a
// resized branch). It returns d unchanged when the sizes match or are
// unknown.
func (d Detections) ScaledTo(w, h int) Detections {
	if d.Width <= 0 || d.Height <= 0 || (d.Width == w && d.Height == h) {
		return d
	}
	out := d
	out.Width, out.Height = w, h
	out.Objects = make([]Detection, len(d.Objects))
	for i, o := range d.Objects {
		b := o.Box
		o.Box = image.Rect(b.Min.X*w/d.Width, b.Min.Y*h/d.Height, b.Max.X*w/d.Width, b.Max.Y*h/d.Height)
		out.Objects[i] = o
	}
	return out
}

// clone deep-copies a detections list.
func cloneDetections(ds []Detections) []Detections {
	if ds == nil {
		return nil
	}
	out := make([]Detections, len(ds))
	for i, d := range ds {
		out[i] = d
		out[i].Objects = append([]Detection(nil), d.Objects...)
	}
	return out
}

// WithDetections returns a new image header carrying im's metadata, its
// Detections plus d, and im's pixels, shared (not copied) and read-only:
// the way an operator attaches results to a frame that other fan-out
// branches share, without writing to it.
//
// Ownership: the call takes over the caller's hold on im. The returned
// image is the caller's; its last Release releases im. Do not use im
// afterwards (use the result).
func (im *ChImage) WithDetections(d Detections) *ChImage {
	c := &ChImage{
		Camera: im.Camera, Time: im.Time, ID: im.ID, Width: im.Width, Height: im.Height, Stride: im.Stride,
		Format: im.Format, Data: im.Data, Keyframe: im.Keyframe, PictType: im.PictType,
		PTS: im.PTS, Packet: im.Packet, Modified: im.Modified,
		Detections: append(cloneDetections(im.Detections), d),
		parent:     im,
	}
	return c
}

// DetectionsOf returns the detections of the named model attached to im,
// and whether there are any.
func (im *ChImage) DetectionsOf(model string) (Detections, bool) {
	for _, d := range im.Detections {
		if d.Model == model {
			return d, true
		}
	}
	return Detections{}, false
}

// detectionJSON is Detection's JSON form: the box as [x0, y0, x1, y1].
type detectionJSON struct {
	Box   [4]int  `json:"box"`
	Label string  `json:"label"`
	Score float64 `json:"score"`
}

// MarshalJSON writes {"box":[x0,y0,x1,y1],"label":...,"score":...}.
func (d Detection) MarshalJSON() ([]byte, error) {
	b := d.Box
	return json.Marshal(detectionJSON{Box: [4]int{b.Min.X, b.Min.Y, b.Max.X, b.Max.Y}, Label: d.Label, Score: d.Score})
}

// UnmarshalJSON reads MarshalJSON's form.
func (d *Detection) UnmarshalJSON(p []byte) error {
	var j detectionJSON
	if err := json.Unmarshal(p, &j); err != nil {
		return err
	}
	*d = Detection{Box: image.Rect(j.Box[0], j.Box[1], j.Box[2], j.Box[3]), Label: j.Label, Score: j.Score}
	return nil
}
