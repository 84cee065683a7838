package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/record"
)

// recordConfig is what `chrysalis record` runs.
type recordConfig struct {
	redis    redisFlags
	cameras  []string
	out      string
	segment  time.Duration
	keep     string
	preRoll  time.Duration
	postRoll time.Duration
	always   bool
	on, off  bool
	verbose  bool
	timeout  time.Duration
}

func newRecordCmd() *cobra.Command {
	var rc recordConfig
	c := &cobra.Command{
		Use:   "record --camera ID --out DIR | record --on|--off --camera ID",
		Short: "Archive cameras from the cache into MP4 segments, switched on and off like the edge proxy's storage",
		Long: `record remuxes cameras' cached packets (no re-encode) into MP4 segments in
DIR/<camera>/<camera>_<start>.mp4 until Ctrl-C or SIGTERM, which finalise the
open segment. A segment is cut at the first keyframe past --segment. Segments
are fragmented MP4: after a SIGKILL the open segment (.<name>.*.part) plays up
to its last fragment, losing at most one keyframe interval; the next record
run renames it into place.

Recording follows the edge proxy's storage switch, the "store" field of
last_access_time_<camera> in Redis ("1" on, "0" off; our ingest sets it to
"1" when the camera starts unless already set), read every 0.5 s, and at once
when Redis sends keyspace notifications (CONFIG SET notify-keyspace-events Kh). Switching on
at t records from the keyframe at or before t - --pre-roll, from the cache;
switching off at t records through t + --post-roll. --always records from the
start and ignores the switch.

record --on / --off sets the switch of --camera, so running recorders (and
the edge proxy) follow it.

--keep bounds the archive per camera: a duration (1h: delete segments that
started longer ago) or a size (500MB, 2GiB: delete the oldest finished
segments beyond it).

Beside each segment, <name>.idx indexes its packets (cache ids, timestamps):
record ls lists the segments from it, and export --archive DIR reads from the
archive what the cache has trimmed.`,
		Example: `  chrysalis record --redis-url redis://localhost:6379 --camera cam1 --out /var/archive --keep 24h
  chrysalis record --camera cam1 --camera door --out archive --segment 5m --keep 20GB --always
  chrysalis record --on --camera cam1`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runRecord(cmd.Context(), cmd.OutOrStdout(), rc) },
	}
	f := c.Flags()
	rc.redis.register(c)
	f.StringArrayVar(&rc.cameras, "camera", nil, "camera id (required; repeat for more cameras)")
	f.StringVarP(&rc.out, "out", "o", "", "archive directory (required to record)")
	f.DurationVar(&rc.segment, "segment", record.DefaultSegment, "segment length (cut at the next keyframe)")
	f.StringVar(&rc.keep, "keep", "", "retention per camera: a duration (1h) or a size (500MB); default unbounded")
	f.DurationVar(&rc.preRoll, "pre-roll", record.DefaultPreRoll, "record from this long before switching on (from the cache)")
	f.DurationVar(&rc.postRoll, "post-roll", 0, "record this long after switching off")
	f.BoolVar(&rc.always, "always", false, "record all the time, ignoring the store switch")
	f.BoolVar(&rc.on, "on", false, "set the store switch of --camera on and exit")
	f.BoolVar(&rc.off, "off", false, "set the store switch of --camera off and exit")
	f.BoolVarP(&rc.verbose, "verbose", "v", false, "debug logging")
	f.DurationVar(&rc.timeout, "connect-timeout", 10*time.Second, "give up connecting to Redis after this long")
	c.AddCommand(newRecordLsCmd())
	return c
}

// segmentJSON is one line of record ls --json.
type segmentJSON struct {
	File      string    `json:"file"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	FirstID   string    `json:"first_id"`
	LastID    string    `json:"last_id"`
	Frames    int64     `json:"frames"`
	Keyframes int64     `json:"keyframes"`
	Size      int64     `json:"size"`
}

func newRecordLsCmd() *cobra.Command {
	var cam, out string
	var asJSON bool
	c := &cobra.Command{
		Use:   "ls --camera ID --out DIR",
		Short: "List a camera's archived segments: start, end, frames and size",
		Long: `record ls reads the segment index that record writes next to each segment
(<name>.idx) and lists the camera's finished segments in DIR/<camera>/, oldest
first: the cache times of the first and last packet, the frames, and the
file's size. A segment without an index is reported on stderr and left out.`,
		Example: `  chrysalis record ls --camera cam1 --out /var/archive
  chrysalis record ls --camera cam1 --out archive --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case cam == "":
				return usagef("no camera: pass --camera ID")
			case strings.ContainsAny(cam, `/\`) || cam == "." || cam == "..":
				return usagef("--camera %q cannot name a directory", cam)
			case out == "":
				return usagef("no --out DIR: the archive to list")
			}
			segs, err := record.List(out, cam)
			if err != nil && len(segs) == 0 {
				if errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("camera %q: no archive in %s: %w", cam, out, cache.ErrNotFound)
				}
				return err
			}
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "chrysalis record ls: %v\n", err)
			}
			w := cmd.OutOrStdout()
			if asJSON {
				list := make([]segmentJSON, len(segs))
				for i, s := range segs {
					list[i] = segmentJSON{File: s.Path, Start: s.Start, End: s.End, FirstID: s.First.String(),
						LastID: s.Last.String(), Frames: s.Frames, Keyframes: s.Keyframes, Size: s.Size}
				}
				return json.NewEncoder(w).Encode(list)
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "START\tEND\tDURATION\tFRAMES\tSIZE\tFILE")
			for _, s := range segs {
				fmt.Fprintf(tw, "%s\t%s\t%.3fs\t%d\t%d\t%s\n", s.Start.Format(time.RFC3339Nano), s.End.Format(time.RFC3339Nano),
					s.End.Sub(s.Start).Seconds(), s.Frames, s.Size, filepath.Base(s.Path))
			}
			return tw.Flush()
		},
	}
	f := c.Flags()
	f.StringVar(&cam, "camera", "", "camera id (required)")
	f.StringVarP(&out, "out", "o", "", "archive directory, as given to record (required)")
	f.BoolVar(&asJSON, "json", false, "print the segments as a JSON array")
	return c
}

func (rc recordConfig) check() error {
	if len(rc.cameras) == 0 {
		return usagef("no camera: pass --camera ID (repeat it for more cameras)")
	}
	for i, c := range rc.cameras {
		switch {
		case strings.TrimSpace(c) == "":
			return usagef("--camera is empty")
		case strings.ContainsAny(c, `/\`) || c == "." || c == "..":
			return usagef("--camera %q cannot name a directory", c)
		case slices.Index(rc.cameras, c) != i:
			return usagef("--camera %q given twice", c)
		}
	}
	switch {
	case rc.on && rc.off:
		return usagef("--on and --off exclude each other")
	case (rc.on || rc.off) && (rc.always || rc.out != ""):
		return usagef("--on/--off only set the switch: no --out or --always with them")
	case !rc.on && !rc.off && rc.out == "":
		return usagef("no --out DIR: where should the segments go?")
	case rc.segment <= 0:
		return usagef("--segment must be positive")
	case rc.preRoll < 0 || rc.postRoll < 0:
		return usagef("--pre-roll and --post-roll must not be negative")
	}
	return nil
}

func runRecord(ctx context.Context, stdout io.Writer, rc recordConfig) error {
	if err := rc.check(); err != nil {
		return err
	}
	var ro record.Options
	if rc.keep != "" {
		age, size, err := parseKeep(rc.keep)
		if err != nil {
			return err
		}
		ro.KeepAge, ro.KeepBytes = age, size
	}
	log, resetLog := setupLogging(rc.verbose)
	defer resetLog()
	dctx, cancel := context.WithTimeout(ctx, rc.timeout)
	rdc, err := rc.redis.dial(dctx, rediscache.Options{Logger: log})
	cancel()
	if err != nil {
		return err
	}
	defer rdc.Close()

	if rc.on || rc.off {
		sw := record.RedisSwitch(rdc.Client())
		for _, id := range rc.cameras {
			if err := sw.Set(ctx, id, rc.on); err != nil {
				return fmt.Errorf("setting the store switch of %q: %w", id, err)
			}
		}
		fmt.Fprintf(stdout, "chrysalis record: store %s for %s\n", map[bool]string{true: "on", false: "off"}[rc.on],
			strings.Join(rc.cameras, ", "))
		return nil
	}

	cl := chrysalis.New(rdc, chrysalis.Options{Logger: log})
	if err := checkCameras(ctx, cl, rc.cameras, log.Warn); err != nil {
		return err
	}
	preRoll := rc.preRoll
	if preRoll == 0 {
		preRoll = -1 // record.Options: negative is none, zero the default
	}
	ro.Dir, ro.Segment, ro.PreRoll, ro.PostRoll, ro.Always, ro.Logger = rc.out, rc.segment, preRoll, rc.postRoll, rc.always, log
	rec, err := record.New(cl, rc.cameras, ro)
	if err != nil {
		return err
	}
	mode := "following the store switch"
	if rc.always {
		mode = "always"
	}
	fmt.Fprintf(stdout, "chrysalis record: %s into %s, %s (Ctrl-C to stop)\n", strings.Join(rc.cameras, ", "), rc.out, mode)
	<-ctx.Done()
	return rec.Close()
}

// parseKeep reads --keep: a duration, or a size with a unit (B, KB, MB, GB,
// TB in powers of 1000; KiB, MiB, GiB, TiB in powers of 1024).
func parseKeep(s string) (age time.Duration, size int64, err error) {
	s = strings.TrimSpace(s)
	if d, derr := time.ParseDuration(s); derr == nil {
		if d <= 0 {
			return 0, 0, usagef("--keep %q must be positive", s)
		}
		return d, 0, nil
	}
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(strings.ToUpper(s), strings.ToUpper(u.suffix)); ok {
			v, perr := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if perr != nil || v <= 0 || v*u.mult >= math.MaxInt64 {
				break
			}
			return 0, int64(v * u.mult), nil
		}
	}
	return 0, 0, usagef("bad --keep %q: want a duration (1h, 30m) or a size (500MB, 2GiB)", s)
}
