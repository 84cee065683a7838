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
}

// exportPage is how many packets Export fetches per cache round trip.
const exportPage = 256

// Export remuxes a camera's cached packets of [start, end] into an MP4
// at path, without re-encoding. An MP4 can only start on a keyframe, so the
// file starts at the keyframe at or before start (or, when there is none,
// at the first keyframe inside the window). A codec change inside the
// window ends the file at the change. progress, when set, is called once
// per packet written. A window without frames returns an error wrapping
// cache.ErrNotFound and leaves no file.
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
	for done := false; !done; {
		pkts, err := c.Range(ctx, camera, from, end, exportPage)
		if err != nil {
			return st, err
		}
		done = len(pkts) < exportPage
		for _, p := range pkts {
			err := w.WritePacket(p)
			if errors.Is(err, ErrCodecChanged) {
				log.Info("mp4: export stops at a codec change", "camera", camera, "at", p.ID.String())
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
	}
	err = w.Close()
	st.Frames = w.Stats().Packets
	if errors.Is(err, ErrNoFrames) || (err == nil && uint64(st.LastMS) < start.MS) {
		os.Remove(path)
		return ExportStats{}, fmt.Errorf("camera %q: no frames in the window: %w", camera, cache.ErrNotFound)
	}
	return st, err
}
