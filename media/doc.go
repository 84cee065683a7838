// Package media is the vocabulary every stage of Chrysalis Go shares: the
// decoded frame (ChImage), its pixel formats and buffer pool, the encoded
// packet (Packet), codec parameters (Codec) and a frame's identity (ID, the
// cache entry id "<ms>-<seq>"). It has no cgo and no Redis, so the graph
// runtime (package flow), the pure-Go operators and sinks build on it alone,
// as mediamtx's unit package serves its stream readers.
//
// Constructors: objects with a lifecycle are made by New… functions; plain
// values are struct literals. Ownership of frames is written on ChImage.
package media
