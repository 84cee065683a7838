package cv_test

import (
	"path/filepath"
	"testing"

	"github.com/chryscloud/chrysalis-go/cv"
	"github.com/chryscloud/chrysalis-go/media"
)

// BenchmarkModels measures each model of examples/fan-out-models on its
// input there: HOG people on the 768x576 frame (upscaled 1.5x), the Haar
// face cascade on the frame converted to gray 384x288.
//
//	go test -run '^$' -bench Models -benchtime 5x ./cv/
func BenchmarkModels(b *testing.B) {
	frame := loadJPEG(b, filepath.Join("testdata", "people-2s.jpg"))
	small := &media.ChImage{Width: 384, Height: 288, Stride: 384, Format: media.GRAY8, Data: make([]byte, 384*288)}
	for y := range 288 { // nearest neighbour, BT.601 luma
		for x := range 384 {
			p := frame.Data[2*y*frame.Stride+6*x:]
			small.Data[y*384+x] = uint8((29*int(p[0]) + 150*int(p[1]) + 77*int(p[2])) >> 8)
		}
	}
	hog, err := cv.NewHOG(peopleHOG)
	if err != nil {
		b.Fatal(err)
	}
	defer hog.Close()
	face, err := cv.NewCascade(cv.HaarFrontalFace, cv.CascadeOptions{MinNeighbors: 5})
	if err != nil {
		b.Fatal(err)
	}
	defer face.Close()
	for _, m := range []struct {
		name string
		d    cv.Detector
		img  *media.ChImage
	}{{"hog-people-768x576", hog, frame}, {"haar-face-384x288", face, small}} {
		b.Run(m.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := m.d.Detect(m.img); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/frame")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fps")
		})
	}
}
