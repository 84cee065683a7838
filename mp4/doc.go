// Package mp4 writes MP4 files with FFmpeg through go-astiav: Writer remuxes
// encoded packets without decoding (WritePacket), or encodes images with
// libx264 (WriteImage), and Export remuxes a window of a camera's frame
// cache in one call. A Writer may also carry an AAC track (AddAudio,
// WriteAudio: ADTS frames on the video's cache clock, as the cloud layout
// stores them), which Export fills from a cache.AudioReader. The video
// sinks of package sink are flow nodes over it.
//
//	w, err := mp4.Create("out.mp4", codec, mp4.Options{})
//	for _, p := range packets { // from the cache, oldest first
//		if err := w.WritePacket(p); err != nil { ... }
//	}
//	err = w.Close() // writes the trailer; the file appears at its path
package mp4
