// Package sink holds the terminal nodes of a flow graph, each a thin flow
// node over a library: image files (ImageFiles), MP4 video files and
// per-event clips (VideoFile, Clips, over package mp4: remuxed without
// re-encoding when frames are untouched), an HTTP MJPEG preview
// (MJPEGServer), and adapters to a Go func or channel (Func, Chan,
// Discard).
//
// Every sink implements flow.Sink: Run(ctx, in) consumes in until it is
// closed (then returns nil) or ctx ends (then returns ctx.Err(), after
// finalizing what it was writing). A sink owns each image it receives and
// releases it when done with it; images are shared read-only with other
// branches, so no sink writes into one. A callback (Func) borrows the
// image until it returns.
//
// The OpenCV window sink lives in package sink/gocvwin, so that programs
// without OpenCV can build everything here. The HLS server, which reads the cache
// rather than a graph, is package watch/hls.
package sink
