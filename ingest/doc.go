// Package ingest is the streaming node: it demuxes a camera or any FFmpeg
// input with go-astiav and writes the encoded VIDEO packets, without
// decoding them, into a [cache.Cache] (Redis Streams in the edge proxy's
// layout or the Chrysalis Cloud node's, or the in-process cache). For a
// cache that stores Annex B (the cloud layout, see AnnexBCache) the packets
// are converted with FFmpeg's mp4toannexb filters and the first AAC audio
// stream is written too, as ADTS (see AudioCache).
//
// Inputs:
//   - RTMP pushed by a camera to us: Config.Listen with
//     rtmp://127.0.0.1:1935/live/cam (we act as the RTMP server);
//   - RTMP/RTSP/HTTP/SRT... pulled from a server (any URL FFmpeg opens;
//     InputOptions carries demuxer/protocol options such as
//     rtsp_transport=tcp);
//   - files, read as fast as the cache takes them, or paced by their
//     timestamps like `ffmpeg -re` (Config.Realtime), optionally looped with
//     monotonic timestamps (Config.Loop).
//
// What is written, per camera:
//   - every video packet of the first video stream, starting at the first
//     keyframe of each connection (packets before it cannot be decoded and
//     are counted as Stats.Skipped); other streams are ignored;
//   - Packet.Timestamp is the packet's capture time in UTC ms, which
//     becomes the millisecond of the cache id (see "Capture time" below);
//     PTS/DTS are the stream's (offset when looping so they keep
//     increasing), TimeBase is the stream time base in seconds, Data is a
//     copy of the packet bytes, FrameType is "I" for keyframes and "P"
//     otherwise (nothing is decoded), Number counts the packets read and
//     accepted (1, 2, ...) and KeyframeNumber the keyframes since New,
//     Width/Height/CodecName/PixFmt are the current codec parameters, and
//     keyframes also carry the extradata;
//   - a live input's stream probe reads for at most 1s (FFmpeg's
//     analyzeduration; FLV over RTMP would otherwise hold the first packets
//     for 5s); the packets read during the probe reach the cache together,
//     but their capture times keep the stream's spacing (below);
//   - the codec parameters (name, long name, size, pixel format, extradata)
//     through cache.SetCodec, before the first packet and again whenever a
//     reconnect or an in-band change (new extradata side data, a new size)
//     brings different parameters.
//
// Capture time. A packet's Timestamp follows the stream's own clock,
// anchored to the wall clock: anchor + (DTS - DTS₀) × time base, where
// DTS₀ is the DTS of the packet the clock was anchored at and anchor its
// wall-clock time (Config.Now). So stamps are smooth (one frame interval
// apart, whatever the arrival bursts of an RTMP push) and, at any frame
// rate below 1000 fps, no two share a millisecond; a stamp at or before the
// previous one becomes the previous + 1 ms, so ids strictly increase. The
// clock is anchored:
//   - for a live input, at the start of each connection's stream probe
//     (the earliest its first packet can have been read, since the probe
//     holds packets back); for a file, at the wall-clock time of its first
//     packet;
//   - back, for a live input, whenever a packet is read before the time
//     its stamp would say: a frame is not captured after it arrives, so
//     that packet is stamped at its read time and the anchor stays there
//     (it settles on the earliest arrival; a pusher whose first packets
//     come ahead of the probe start, a camera clock running fast). A live
//     stamp is never later than the packet's read time;
//   - again, at the wall clock, when a live input's stream time falls
//     behind the wall clock by more than MaxClockDrift (2s) (a camera
//     whose clock runs slow; a long stall);
//   - again on a timestamp discontinuity: DTS going backwards, or forward by
//     more than MaxClockStep (10s).
//
// A file read without Realtime follows its own clock only: it is anchored
// at the wall-clock time of its first packet and never re-anchored for
// drift, so the cache spans the clip's duration (100 frames at 25 fps get
// 100 stamps 40 ms apart, reaching into the future when the file is read
// faster than real time); on a discontinuity its timeline continues one
// frame after the last stamp. Loop passes are not discontinuities (their
// DTS are offset to keep increasing). A file read with Realtime is paced by
// its timestamps, so its stamps stay on the wall clock like a live input's.
//
// Failure handling:
//   - a live input (a URL, or Listen) that fails, ends, or produces nothing
//     for Config.ReadTimeout is reopened after a capped exponential backoff
//     (Config.BackoffMin..BackoffMax, reset after a connection that delivered
//     packets); Ingest never exits because a pusher disconnected;
//   - a cache that fails (a Redis outage) does not stop reading: packets
//     queue in memory up to Config.Buffer of packet time, and the queue is
//     flushed in order when the cache comes back. Beyond Config.Buffer
//     whole GOPs are dropped from the oldest end (Stats.Dropped): the oldest
//     packet and every following packet up to the next keyframe; a packet
//     the writer gives up on takes the rest of its GOP with it, including
//     packets of that GOP not yet read. So the cache never holds a GOP
//     without its keyframe, and the first packet after any gap is a
//     keyframe. A file read without Realtime waits for the cache instead of
//     dropping;
//   - cancelling the context interrupts any blocking FFmpeg call at once
//     (an astiav IOInterrupter); Run then flushes what is buffered for up to
//     Config.FlushTimeout and returns nil. Every goroutine Run starts has
//     exited when it returns.
//
// Packet numbers. Number is assigned when a packet is read and accepted,
// before it is buffered, so within what is written Numbers are contiguous
// except across drops, where they jump by the number of packets dropped: a
// reader sees every gap the ingest made. Packets before a connection's
// first keyframe (Stats.Skipped) are not numbered. A reconnect after a
// connection that delivered packets (a stalled, dropped or departed
// camera) skips one number: what the camera sent meanwhile is lost, and
// readers report the gap (CameraStats.Gaps) instead of decoding across it;
// the new connection's first packet is a keyframe. Loop restarts skip
// nothing.
//
// FFmpeg's own log goes wherever the process routes it (astiav.SetLogLevel,
// astiav.SetLogCallback); this package logs its own events through
// Config.Logger.
package ingest
