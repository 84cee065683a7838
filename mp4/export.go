package mp4

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/chryscloud/chrysalis-go/cache"
)

// ExportStats describes an exported MP4.
type ExportStats struct {
	// Frames is the number of frames written.
	Frames int64
	// FirstMS and LastMS are the first and last written packets' cache
	// timestamps (UTC ms).
	FirstMS, LastMS int64
	// AudioFrames is the number of AAC frames in the file's audio track;
	// AudioBad counts the cached audio entries in the video's span that
	// were skipped as not well-formed ADTS.
	AudioFrames, AudioBad int64
	// Skipped counts the window's video packets read but not written: those
	// before the first keyframe (when the cache holds none at or before the
	// window's start) and those after a gap in packet numbers until the
	// next keyframe. Their frames are missing from the file.
	Skipped int64
	// Gaps counts the gaps in the packet numbering behind Skipped.
	Gaps int64
	// CutMS is the cache time of the keyframe where a codec change ended
	// the file before the window's end (0: not cut). Logged at Warn.
	CutMS int64
}

// exportPage is how many packets Export fetches per cache round trip.
const exportPage = 256

// Export remuxes a camera's cached packets of [start, end] into an MP4
// at path, without re-encoding. An MP4 can only start on a keyframe, so the
// file starts at the keyframe at or before start (or, when there is none,
// at the first keyframe inside the window). A codec change inside the
// window ends the file at the change (ExportStats.CutMS, logged at Warn).
// progress, when set, is called once per packet written. A window without frames returns an error wrapping
// cache.ErrNotFound and leaves no file.
//
// When the cache keeps the camera's audio (cache.AudioReader: rediscache's
// cloud layout), the file gets an AAC track of the audio that covers the
// video, in sync with it (see Writer.WriteAudio); audio entries that are
// not well-formed ADTS are skipped and counted, and a camera without audio
// gives a video-only file.
func Export(ctx context.Context, c cache.Cache, camera string, start, end cache.ID, path string, o Options,
	progress func()) (ExportStats, error) {
	var st ExportStats
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	// The keyframe at or before the window's first packet (sequence-aware:
	// many packets may share start's millisecond).
	from := start
	first, err := c.Range(ctx, camera, start, end, 1)
	if err != nil {
		return st, err
	}
	if len(first) == 1 {
		kf, err := c.KeyframeAtOrBefore(ctx, camera, first[0].ID)
		switch {
		case err == nil:
			from = kf.ID
		case errors.Is(err, cache.ErrNotFound):
			// No keyframe before the window: the writer skips to the first
			// one inside it.
		default:
			return st, err
		}
	}
	codec, err := c.Codec(ctx, camera)
	if err != nil && !errors.Is(err, cache.ErrNotFound) && !errors.Is(err, cache.ErrUnknownCamera) {
		return st, err
	}
	w, err := Create(path, codec, o)
	if err != nil {
		return st, err
	}
	defer w.Close()
	au, err := newExportAudio(ctx, c, camera, from, end, w, log)
	if err != nil {
		return st, err
	}
	for done := false; !done; {
		pkts, err := c.Range(ctx, camera, from, end, exportPage)
		if err != nil {
			return st, err
		}
		done = len(pkts) < exportPage
		for _, p := range pkts {
			err := w.WritePacket(p)
			if errors.Is(err, ErrCodecChanged) {
				// The rest of the window is not in the file: say so.
				st.CutMS = int64(p.ID.MS)
				log.Warn("mp4: export cut short at a codec change; the rest of the window is not in the file",
					"camera", camera, "at", p.ID.String(), "window_end", end.String(), "written", w.Stats().Packets, "err", err)
				done = true
				break
			}
			if err != nil {
				return st, err
			}
			if st.FirstMS == 0 && p.Keyframe { // the writer starts at the first keyframe
				st.FirstMS = int64(p.ID.MS)
			}
			st.LastMS = int64(p.ID.MS)
			if progress != nil {
				progress()
			}
		}
		if len(pkts) > 0 {
			from = pkts[len(pkts)-1].ID.Next()
		}
		// The audio up to the last video frame read (and at the end, a
		// bit past it: the writer keeps what covers the last frame).
		upTo := st.LastMS
		if done {
			upTo += audioTail
		}
		if err := au.writeUpTo(ctx, upTo); err != nil {
			return st, err
		}
	}
	err = w.Close()
	ws := w.Stats()
	st.Frames, st.AudioFrames, st.AudioBad, st.Skipped, st.Gaps = ws.Packets, ws.AudioPackets, ws.AudioBad, ws.Skipped, ws.Gaps
	if errors.Is(err, ErrNoFrames) || (err == nil && uint64(st.LastMS) < start.MS) {
		os.Remove(path)
		return ExportStats{}, fmt.Errorf("camera %q: no frames in the window: %w", camera, cache.ErrNotFound)
	}
	return st, err
}

// exportAudio feeds a camera's cached audio to an export's writer.
type exportAudio struct {
	ar     cache.AudioReader
	cam    string
	w      *Writer
	log    *slog.Logger
	from   cache.ID // the next audio entry to read
	warned bool
}

// audioLead is how far before the first video frame the audio is read: the
// writer starts with the frame nearest to it.
const audioLead = 100 // ms

// audioTail is how far after the last video frame's time the audio is
// read: past its duration (40 ms at 25 fps) plus half an audio frame.
const audioTail = 500 // ms

// newExportAudio adds an audio track to w when the cache has audio for cam
// from the video's start on, configured by the first well-formed entry; it
// returns nil (a no-op) otherwise.
func newExportAudio(ctx context.Context, c cache.Cache, cam string, from, end cache.ID, w *Writer, log *slog.Logger) (*exportAudio, error) {
	ar, ok := c.(cache.AudioReader)
	if !ok {
		return nil, nil
	}
	start := cache.ID{MS: from.MS - min(from.MS, audioLead)}
	frames, err := ar.AudioRange(ctx, cam, start, end, 16)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		log.Warn("mp4: export without audio: reading it failed", "camera", cam, "err", err)
		return nil, nil
	}
	for _, f := range frames {
		cfg, _, perr := ParseADTS(f.Data)
		if perr != nil {
			continue
		}
		if err := w.AddAudio(cfg); err != nil {
			return nil, err
		}
		return &exportAudio{ar: ar, cam: cam, w: w, log: log, from: start}, nil
	}
	if len(frames) > 0 {
		log.Warn("mp4: export without audio: the camera's first audio entries are not ADTS", "camera", cam, "entries", len(frames))
	}
	return nil, nil
}

// writeUpTo gives the writer the audio entries up to ms. Audio that
// cannot be read ends the audio track there (logged), not the export.
func (a *exportAudio) writeUpTo(ctx context.Context, ms int64) error {
	if a == nil || a.ar == nil || ms < 0 || uint64(ms) < a.from.MS {
		return nil
	}
	to := cache.ID{MS: uint64(ms), Seq: ^uint64(0)}
	for {
		frames, err := a.ar.AudioRange(ctx, a.cam, a.from, to, exportPage)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			a.log.Warn("mp4: export's audio ends: reading it failed", "camera", a.cam, "at", a.from.String(), "err", err)
			a.ar = nil
			return nil
		}
		for _, f := range frames {
			if err := a.w.WriteAudio(int64(f.ID.MS), f.Data); err != nil {
				if !errors.Is(err, ErrBadADTS) {
					return err
				}
				if !a.warned {
					a.warned = true
					a.log.Warn("mp4: skipping audio entries that are not ADTS (counted)", "camera", a.cam, "id", f.ID.String(), "err", err)
				}
			}
		}
		if len(frames) > 0 {
			a.from = frames[len(frames)-1].ID.Next()
		}
		if len(frames) < exportPage {
			return nil
		}
	}
}
