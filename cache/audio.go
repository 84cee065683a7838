package cache

import "context"

// AudioFrame is one entry of a camera's audio: an ADTS frame (AAC) at its
// capture time, on the same clock as the video's ids. Data is read-only.
type AudioFrame struct {
	ID   ID
	Data []byte
}

// AudioReader is implemented by a cache that keeps cameras' audio beside
// their video (rediscache in the cloud layout). AudioRange returns camera's
// audio frames with start <= id <= end, oldest first (count <= 0: all), and
// nil when the camera has no audio.
type AudioReader interface {
	AudioRange(ctx context.Context, camera string, start, end ID, count int64) ([]AudioFrame, error)
}
