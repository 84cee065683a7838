package mp4

import (
	"errors"
	"fmt"
)

// ErrBadADTS: an audio frame that is not a well-formed ADTS AAC frame the
// MP4 writer can carry (bad sync word, layer, sampling frequency, channel
// configuration, length, or several raw data blocks in one frame).
var ErrBadADTS = errors.New("mp4: malformed ADTS frame")

// AudioConfig is an AAC stream's configuration, as an ADTS header states
// it.
type AudioConfig struct {
	// ObjectType is the MPEG-4 audio object type: 1 Main, 2 LC, 3 SSR,
	// 4 LTP (ADTS carries no other).
	ObjectType int
	// SampleRate in Hz, one of the 13 rates ADTS can name.
	SampleRate int
	// Channels is the channel configuration, 1..7 (7 = 7.1).
	Channels int
}

// samplesPerFrame is an AAC frame's length (ADTS frames have no 960-sample
// variant).
const samplesPerFrame = 1024

// adtsRates are the sampling rates by ADTS sampling_frequency_index.
var adtsRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// freqIndex is c.SampleRate's sampling_frequency_index, or -1.
func (c AudioConfig) freqIndex() int {
	for i, r := range adtsRates {
		if r == c.SampleRate {
			return i
		}
	}
	return -1
}

func (c AudioConfig) valid() error {
	switch {
	case c.ObjectType < 1 || c.ObjectType > 4:
		return fmt.Errorf("%w: audio object type %d (want 1..4)", ErrBadADTS, c.ObjectType)
	case c.freqIndex() < 0:
		return fmt.Errorf("%w: sample rate %d", ErrBadADTS, c.SampleRate)
	case c.Channels < 1 || c.Channels > 7:
		return fmt.Errorf("%w: channel configuration %d (want 1..7)", ErrBadADTS, c.Channels)
	}
	return nil
}

// channels is the number of channels of channel configuration c.Channels.
func (c AudioConfig) channels() int {
	if c.Channels == 7 {
		return 8
	}
	return c.Channels
}

// AudioSpecificConfig returns the 2-byte MPEG-4 AudioSpecificConfig (the
// MP4 track's extradata) of c.
func (c AudioConfig) AudioSpecificConfig() []byte {
	f := c.freqIndex()
	return []byte{byte(c.ObjectType<<3 | f>>1), byte((f&1)<<7 | c.Channels<<3)}
}

// ParseADTS splits b, one or more ADTS frames back to back, into raw AAC
// access units (headers and CRCs removed), and returns the configuration
// they share. Anything else (a short or truncated frame, a bad sync word
// or layer, a reserved sampling frequency, channel configuration 0, which
// needs an in-band program config element, several raw data blocks in one
// frame, frames of different configurations, trailing bytes) returns an
// error wrapping ErrBadADTS. The access units alias b.
func ParseADTS(b []byte) (AudioConfig, [][]byte, error) {
	var cfg AudioConfig
	var aus [][]byte
	for off := 0; off < len(b); {
		c, au, n, err := parseADTSFrame(b[off:])
		if err != nil {
			return AudioConfig{}, nil, fmt.Errorf("%w (at byte %d of %d)", err, off, len(b))
		}
		if len(aus) > 0 && c != cfg {
			return AudioConfig{}, nil, fmt.Errorf("%w: frames of different configurations (%+v, then %+v)", ErrBadADTS, cfg, c)
		}
		cfg = c
		aus = append(aus, au)
		off += n
	}
	if len(aus) == 0 {
		return AudioConfig{}, nil, fmt.Errorf("%w: empty", ErrBadADTS)
	}
	return cfg, aus, nil
}

// parseADTSFrame reads the ADTS frame at the front of b: its configuration,
// its raw access unit and its total length.
func parseADTSFrame(b []byte) (AudioConfig, []byte, int, error) {
	if len(b) < 7 {
		return AudioConfig{}, nil, 0, fmt.Errorf("%w: %d bytes, shorter than a header", ErrBadADTS, len(b))
	}
	if b[0] != 0xff || b[1]&0xf0 != 0xf0 {
		return AudioConfig{}, nil, 0, fmt.Errorf("%w: no sync word (% x)", ErrBadADTS, b[:2])
	}
	if layer := b[1] >> 1 & 3; layer != 0 {
		return AudioConfig{}, nil, 0, fmt.Errorf("%w: layer %d (want 0)", ErrBadADTS, layer)
	}
	crc := b[1]&1 == 0
	fi := int(b[2] >> 2 & 0xf)
	if fi >= len(adtsRates) {
		return AudioConfig{}, nil, 0, fmt.Errorf("%w: sampling frequency index %d", ErrBadADTS, fi)
	}
	cfg := AudioConfig{ObjectType: int(b[2]>>6) + 1, SampleRate: adtsRates[fi], Channels: int(b[2]&1)<<2 | int(b[3]>>6)}
	if cfg.Channels == 0 {
		return AudioConfig{}, nil, 0, fmt.Errorf("%w: channel configuration 0 (program config element) is not supported", ErrBadADTS)
	}
	n := int(b[3]&3)<<11 | int(b[4])<<3 | int(b[5]>>5)
	if blocks := int(b[6]&3) + 1; blocks != 1 {
		return AudioConfig{}, nil, 0, fmt.Errorf("%w: %d raw data blocks in one frame (want 1)", ErrBadADTS, blocks)
	}
	hdr := 7
	if crc {
		hdr = 9
	}
	switch {
	case n <= hdr:
		return AudioConfig{}, nil, 0, fmt.Errorf("%w: frame length %d, no larger than its %d-byte header", ErrBadADTS, n, hdr)
	case n > len(b):
		return AudioConfig{}, nil, 0, fmt.Errorf("%w: frame length %d, only %d bytes left", ErrBadADTS, n, len(b))
	}
	return cfg, b[hdr:n:n], n, nil
}
