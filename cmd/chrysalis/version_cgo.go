package main

// #cgo pkg-config: libavutil libavcodec
// #include <libavutil/avutil.h>
// #include <libavcodec/avcodec.h>
import "C"

import "fmt"

// ffmpegVersion is FFmpeg's own version string (av_version_info).
func ffmpegVersion() string { return C.GoString(C.av_version_info()) }

// avcodecVersion is the linked libavcodec's version.
func avcodecVersion() string {
	v := uint(C.avcodec_version())
	return fmt.Sprintf("%d.%d.%d", v>>16, (v>>8)&0xff, v&0xff)
}
