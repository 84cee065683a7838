// Package pb holds the protobuf messages of the Chrysalis edge proxy's frame
// cache (VideoFrame, VideoCodec). The generated code is committed so that a
// build needs no protoc; `go generate` regenerates it.
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative chrysalis.proto
