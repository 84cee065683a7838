package av_test

import (
	"log"

	"github.com/chryscloud/chrysalis-go/internal/av"
)

// Decode packets from a cache and convert every frame to a 640x360 BGR image.
func Example() {
	var (
		params  av.CodecParams // from the stream's metadata
		packets []struct {
			Data     []byte
			Pts, Dts int64
			Key      bool
		}
	)
	params.Name = "h264"

	dec, err := av.NewDecoder(params, av.DecoderOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer dec.Close()
	var conv av.Converter
	defer conv.Close()

	var img []byte // reused for every frame
	onFrame := func(f *av.Frame) error {
		var err error
		img, _, _, _, err = conv.Convert(f, 640, 360, av.BGR24, img)
		if err != nil {
			return err
		}
		// ... use img (valid until the next Convert) and f.Pts() ...
		return nil
	}
	for _, p := range packets {
		if err := dec.Decode(p.Data, p.Pts, p.Dts, p.Key, onFrame); err != nil {
			log.Print(err) // *av.DecodeError: skip to the next keyframe
		}
	}
	if err := dec.Flush(onFrame); err != nil {
		log.Print(err)
	}
}
