// Package sink holds the terminal nodes of a flow graph: image files,
// MP4 video files (remuxed without re-encoding when frames are untouched),
// motion clips, an HTTP MJPEG preview, and adapters to a Go func or channel.
//
// Every sink implements flow.Sink: Run(ctx, in) consumes in until it is
// closed (then returns nil) or ctx ends (then returns ctx.Err(), after
// finalizing what it was writing). A sink owns each image it receives and
// releases it when done with it; images are shared read-only with other
// branches, so no sink writes into one.
//
// The OpenCV window sink lives in package sink/gocvwin, so that programs
// without OpenCV can build everything here.
//
// Video files are written with FFmpeg through go-astiav:
//
//	w, err := sink.CreateMP4("out.mp4", codec, sink.VideoOptions{})
//	for _, p := range packets { // from the cache, oldest first
//		if err := w.WritePacket(p); err != nil { ... }
//	}
//	err = w.Close() // writes the trailer; the file appears at its path
package sink
