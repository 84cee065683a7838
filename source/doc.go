// Package source provides the flow.Sources of Chrysalis Go: where images
// enter a dataflow graph.
//
//   - [Live] follows a camera in the frame cache and emits only frames it
//     has not emitted before, skipping what a slow graph could not take
//     (drop-stale by nature: it asks the cache for the newest frame each
//     time it is ready to send).
//   - [Replay] emits every frame of a past window of the cache, as fast as
//     the graph takes them or paced at the frames' original timing.
//   - [URL] demuxes and decodes any FFmpeg input (a file, an RTSP/RTMP/HTTP
//     URL) directly, for users without an ingest and cache.
//
// Every source follows the flow.Source contract: it sends with flow.Send
// (each send selects on ctx.Done), never closes out, and returns only after
// everything it started has stopped. Each image sent is owned by the
// receiver (see flow's ownership rule); a source keeps no reference to it.
package source
