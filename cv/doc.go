// Package cv runs computer vision models in a Chrysalis graph, over OpenCV
// 4.6 (GoCV v0.32.0 for drawing, a small C++ shim for the detectors, whose
// scores GoCV does not return).
//
//   - Detect(detector) runs a Detector on every image of its branch and
//     attaches the result to the frame as typed metadata (media.Detections:
//     boxes, labels, scores, model, latency), without writing to the frame
//     that other branches share.
//   - Annotate() draws the boxes of every attached model on a copy of the
//     frame, marked Modified so file sinks re-encode it.
//   - The detectors need no download: HOG is OpenCV's built-in people
//     detector; Cascade loads the Haar and LBP cascades of Debian's
//     opencv-data package (/usr/share/opencv4).
//
// A person detector at 2 fps, its detections to JSON lines and annotated
// frames to JPEGs:
//
//	people, _ := cv.NewHOG(cv.HOGOptions{})
//	cam := g.Source("camera", source.Live(cl, "cam1", chrysalis.CameraOptions{}))
//	p := g.Op("people", cv.Detect(people), g.Op("2fps", operator.Throttle(2), cam))
//	g.Sink("people.jsonl", sink.DetectionsJSON(f, sink.DetectionsOptions{}), p)
//	g.Sink("jpeg", sink.ImageFiles(dir, sink.ImageOptions{}), g.Op("draw", cv.Annotate(), p))
//
// The pixel operators (Resize, Crop, Gray) need no OpenCV and live in
// package operator/convert. Detections as data (JSON lines, a Redis
// stream per camera) are sinks of package sink.
//
// It is a separate package because it needs OpenCV's development files
// (pkg-config opencv4) and a C++ compiler; everything else in Chrysalis
// builds without them.
package cv
