package sink

import "github.com/chryscloud/chrysalis-go/mp4"

// The MP4 muxer and encoder live in package mp4; the video sinks here are
// flow nodes over it. These names are the ones the video sinks' options
// use.
type (
	// VideoOptions configures the video sinks' MP4 files (mp4.Options).
	VideoOptions = mp4.Options
	// VideoMode is mp4.Mode: Auto, Remux or Encode.
	VideoMode = mp4.Mode
)

// The video sinks' modes (mp4's).
const (
	Auto   = mp4.Auto
	Remux  = mp4.Remux
	Encode = mp4.Encode
)
