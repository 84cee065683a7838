package mp4

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	"github.com/asticode/go-astiav"

	"github.com/chryscloud/chrysalis-go/internal/avmux"
)

// Errors of the audio track.
var (
	// ErrNoAudioTrack: WriteAudio on a writer without AddAudio.
	ErrNoAudioTrack = errors.New("mp4: no audio track (call AddAudio before the first frame)")
	// ErrAudioTooLate: AddAudio after the header was written (the first
	// keyframe or image), when the file's tracks are fixed.
	ErrAudioTooLate = errors.New("mp4: AddAudio after the first frame was written")
)

// maxAudioQueue bounds the audio frames a writer holds while waiting for
// the video to reach them (2048 AAC frames: 43 s at 48 kHz).
const maxAudioQueue = 2048

// audioFrame is a raw AAC access unit waiting to be written: its cache
// millisecond, plus off samples for the second and later frames of one
// ADTS entry.
type audioFrame struct {
	ms, off int64
	au      []byte
}

// audioTrack is a Writer's AAC track.
type audioTrack struct {
	cfg  AudioConfig
	st   *astiav.Stream
	tb   astiav.Rational // 1/sample rate
	q    []audioFrame    // in arrival order, waiting for the video to pass them
	next int64           // samples: the time following the last frame written
	have bool            // a frame was written (next is set)
	warn bool            // a queue overflow was logged
}

// AddAudio adds an AAC audio track of configuration cfg (from ParseADTS of
// the camera's first audio frame) to the file. It must come before the
// first WritePacket or WriteImage; the audio frames are then given with
// WriteAudio.
func (w *Writer) AddAudio(cfg AudioConfig) error {
	switch {
	case w.closed:
		return ErrClosed
	case w.headerDone:
		return ErrAudioTooLate
	case w.aud != nil:
		return errors.New("mp4: the file already has an audio track")
	}
	if err := cfg.valid(); err != nil {
		return err
	}
	w.aud = &audioTrack{cfg: cfg, tb: astiav.NewRational(1, cfg.SampleRate)}
	return nil
}

// WriteAudio adds one cache entry of audio: one or more ADTS frames (with
// or without CRC) captured at ms, a cache time on the video's clock (the
// cloud layout's audio entry id). The frames are held until the video
// reaches them and written interleaved with it, each 1024 samples after the
// one before while the cache times agree with that to within half a frame
// (so the ms rounding of the cache ids does not jitter the audio); a larger
// step forward is a gap the audio track keeps, an earlier time overlaps
// the frames already written and is skipped. The file's audio covers the
// video: it starts with the frame nearest the first video frame and ends
// with the one nearest the video's end (both within half a frame), the
// frames outside are skipped (Stats.AudioSkipped). A fragmented MP4 has no
// edit list to start a track off 0: there the muxer moves the first audio
// frame to the video's start (by less than half a frame; the rest keep
// their times).
//
// An entry that is not well-formed ADTS, or whose configuration differs
// from the track's, returns an error wrapping ErrBadADTS and counts in
// Stats.AudioBad; the writer stays usable. adts is copied.
func (w *Writer) WriteAudio(ms int64, adts []byte) error {
	if w.closed {
		return ErrClosed
	}
	a := w.aud
	if a == nil {
		return ErrNoAudioTrack
	}
	cfg, aus, err := ParseADTS(adts)
	if err == nil && cfg != a.cfg {
		err = fmt.Errorf("%w: configuration %+v differs from the track's %+v", ErrBadADTS, cfg, a.cfg)
	}
	if err != nil {
		w.audioBad.Add(1)
		return fmt.Errorf("audio at %d ms: %w", ms, err)
	}
	for i, au := range aus {
		a.q = append(a.q, audioFrame{ms: ms, off: int64(i) * samplesPerFrame, au: bytes.Clone(au)})
	}
	if n := len(a.q) - maxAudioQueue; n > 0 {
		// The video is not coming (or lags by more than the queue): the
		// oldest frames cannot be placed.
		if !a.warn {
			a.warn = true
			w.log.Warn("mp4: audio far ahead of the video; dropping the oldest", "file", w.path, "queued", len(a.q))
		}
		w.audioSkipped.Add(int64(n))
		a.q = append(a.q[:0], a.q[n:]...)
	}
	return nil
}

// addAudioStream creates the audio stream; writeHeader calls it.
func (w *Writer) addAudioStream() error {
	a := w.aud
	if a == nil {
		return nil
	}
	st := w.fc.NewStream(nil)
	if st == nil {
		return errors.New("mp4: creating the audio stream failed")
	}
	cp := st.CodecParameters()
	cp.SetMediaType(astiav.MediaTypeAudio)
	cp.SetCodecID(astiav.CodecIDAac)
	cp.SetCodecTag(0)
	cp.SetSampleRate(a.cfg.SampleRate)
	cp.SetFrameSize(samplesPerFrame)
	cp.SetChannelLayout(aacLayouts[a.cfg.Channels])
	if err := cp.SetExtraData(a.cfg.AudioSpecificConfig()); err != nil {
		return fmt.Errorf("mp4: setting the audio extradata: %w", err)
	}
	st.SetTimeBase(a.tb)
	a.st = st
	return nil
}

// aacLayouts are the channel layouts of AAC channel configurations 1..7
// (FFmpeg's AAC decoder's).
var aacLayouts = [...]astiav.ChannelLayout{
	1: astiav.ChannelLayoutMono,
	2: astiav.ChannelLayoutStereo,
	3: astiav.ChannelLayoutSurround,
	4: astiav.ChannelLayout4Point0,
	5: astiav.ChannelLayout5Point0Back,
	6: astiav.ChannelLayout5Point1Back,
	7: astiav.ChannelLayout7Point1WideBack,
}

// audioTime is frame f's time in samples on the file's timeline: its cache
// time relative to the video's zero (the first video packet's cache time,
// less the presentation shift).
func (w *Writer) audioTime(f audioFrame) int64 {
	sr := float64(w.aud.cfg.SampleRate)
	sec := float64(f.ms-w.zeroMS)/1000 - float64(w.shift)/ticksPerSecond
	return int64(math.Round(sec*sr)) + f.off
}

// flushAudio writes the queued audio frames that start, give or take half
// a frame, before video time limit (ticks): the video has been written up
// to there. final (at Close, limit = the end of the video) skips the
// rest.
func (w *Writer) flushAudio(limit int64, final bool) error {
	a := w.aud
	if a == nil || !w.headerDone {
		return nil
	}
	const half = samplesPerFrame / 2
	lim := limit * int64(a.cfg.SampleRate) / ticksPerSecond
	n := 0
	defer func() { a.q = append(a.q[:0], a.q[n:]...) }()
	for ; n < len(a.q); n++ {
		f := a.q[n]
		t := w.audioTime(f)
		switch {
		case a.have && t-a.next <= half && a.next-t <= half:
			t = a.next // continuous: exact 1024-sample steps
		case a.have && t < a.next:
			w.audioSkipped.Add(1) // overlaps what was written
			continue
		case t < -half:
			w.audioSkipped.Add(1) // before the video
			continue
		}
		if t+half >= lim {
			if !final {
				return nil // the video has not reached it yet
			}
			w.audioSkipped.Add(int64(len(a.q) - n)) // after the video
			n = len(a.q)
			return nil
		}
		p := avmux.Packet{Data: f.au, PTS: t, DTS: t, Dur: samplesPerFrame, Key: true}
		if err := avmux.WritePacket(w.fc, a.st, w.pkt, &w.buf, a.tb, p); err != nil {
			n++
			return fmt.Errorf("mp4: writing an audio packet: %w", err)
		}
		a.next, a.have = t+samplesPerFrame, true
		w.audioPackets.Add(1)
	}
	return nil
}
