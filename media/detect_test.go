package media_test

import (
	"image"
	"testing"

	"github.com/chryscloud/chrysalis-go/media"
)

// A WithDetections view shares the pixels, holds the frame until its own
// last Release, and never changes the frame other branches see.
func TestWithDetections(t *testing.T) {
	var pool media.ImagePool
	frame := pool.Clone(&media.ChImage{Camera: "c", Width: 2, Height: 1, Stride: 6, Data: []byte{1, 2, 3, 4, 5, 6}})
	frame.Retain() // a second branch
	d := media.Detections{Model: "m", Width: 2, Height: 1, Objects: []media.Detection{{Box: image.Rect(0, 0, 1, 1), Label: "x"}}}
	v := frame.WithDetections(d).WithDetections(media.Detections{Model: "n"})
	if len(frame.Detections) != 0 || len(v.Detections) != 2 || &v.Data[0] != &frame.Data[0] || v.Camera != "c" {
		t.Fatalf("frame %d detections, view %d, shares pixels %v", len(frame.Detections), len(v.Detections), &v.Data[0] == &frame.Data[0])
	}
	if got, ok := v.DetectionsOf("m"); !ok || got.Objects[0].Label != "x" {
		t.Errorf("DetectionsOf(m) = %+v, %v", got, ok)
	}
	c := v.Clone()
	c.Detections[0].Objects[0].Label = "changed"
	if v.Detections[0].Objects[0].Label != "x" {
		t.Error("Clone shares the detections")
	}
	v.Retain()
	v.Release()
	v.Release() // the view's last holder: releases its hold on the frame
	if frame.Data == nil {
		t.Fatal("the frame was freed while the second branch holds it")
	}
	frame.Release()
	if frame.Data != nil {
		t.Error("the frame was not freed after its last holder")
	}
}

func TestScaledTo(t *testing.T) {
	d := media.Detections{Width: 100, Height: 50, Objects: []media.Detection{{Box: image.Rect(10, 10, 50, 40)}}}
	s := d.ScaledTo(200, 100)
	if s.Objects[0].Box != image.Rect(20, 20, 100, 80) || s.Width != 200 || d.Objects[0].Box != image.Rect(10, 10, 50, 40) {
		t.Errorf("scaled %v (%dx%d); original now %v", s.Objects[0].Box, s.Width, s.Height, d.Objects[0].Box)
	}
}
