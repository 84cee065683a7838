// Package democlip embeds the demo camera: a 10 s 1280x720 H.264 clip (25
// fps, a keyframe every 2 s) of a static scene in which a box crosses the
// picture between 4 s and 7 s, so a motion detector has something to find.
// testdata/gen.sh regenerates it.
package democlip

import (
	_ "embed"
	"os"
	"path/filepath"
)

//go:embed demo.mp4
var clip []byte

// Bytes returns the clip (read-only).
func Bytes() []byte { return clip }

// WriteTo writes the clip into dir and returns its path.
func WriteTo(dir string) (string, error) {
	p := filepath.Join(dir, "demo-camera.mp4")
	if err := os.WriteFile(p, clip, 0o644); err != nil {
		return "", err
	}
	return p, nil
}
