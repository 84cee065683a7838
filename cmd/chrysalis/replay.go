package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/replay/parallel"
)

// newReplayCmd is `chrysalis replay`: a past window decoded by N worker
// processes, one GOP at a time, through a Redis consumer group.
func newReplayCmd() *cobra.Command {
	var (
		rf                redisFlags
		cams              []string
		fromS, toS, group string
		out               string
		workers           int
		images, verbose   bool
		claimAfter, delay time.Duration
	)
	c := &cobra.Command{
		Use:   "replay --camera ID... --from TIME --to TIME --out DIR (--workers N | --group NAME)",
		Short: "Decode a past window over several worker processes, one GOP per work item",
		Long: `replay splits the window [--from, --to] of each --camera at its keyframes into
work items, one per GOP, on the Redis stream chrysalis:replay:NAME, and decodes
them with worker processes that share them through the consumer group NAME
(XREADGROUP; XACK when a GOP is done; XAUTOCLAIM for the items of a worker that
died, after --claim-after). Every GOP is done to completion by one worker.

With --workers N it plans and starts N local worker processes. With --group NAME
it joins the group (planning it if nobody did): start the same command on other
machines to add workers. Each worker appends, once per finished GOP, one line per
frame "camera id" to DIR/<worker>.frames (and with --images writes
DIR/<camera>_<id>.jpg).`,
		Example: `  chrysalis replay --camera cam1 --camera cam2 --from -10m --to -1m --workers 4 --out replay/
  # on each machine
  chrysalis replay --camera cam1 --from 2026-12-02T10:00:00Z --to 2026-12-02T11:00:00Z --group nightly --out /data/replay`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case len(cams) == 0:
				return usagef("no camera: pass --camera ID (repeatable)")
			case out == "":
				return usagef("no output: pass --out DIR")
			case workers < 0 || (workers == 0 && group == ""):
				return usagef("pass --workers N (local processes) or --group NAME (join a group)")
			}
			now := time.Now()
			from, err := parseTime("from", fromS, now)
			if err != nil {
				return err
			}
			to, err := parseTime("to", toS, now)
			if err != nil {
				return err
			}
			if !from.Before(to) {
				return usagef("--from must be before --to")
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			log, resetLog := setupLogging(verbose)
			defer resetLog()
			ctx := cmd.Context()
			dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			rc, err := rf.dial(dctx, rediscache.Options{Logger: log})
			cancel()
			if err != nil {
				return err
			}
			defer rc.Close()
			if group == "" {
				group = fmt.Sprintf("replay-%d", now.UnixNano())
			}
			n, err := parallel.Plan(ctx, rc.Client(), rc, group, cams, from, to)
			switch {
			case errors.Is(err, parallel.ErrPlanned):
				log.Info("replay: joining", "group", group)
			case err != nil:
				return err
			default:
				log.Info("replay: planned", "group", group, "items", n)
			}
			if workers > 0 {
				return runReplayWorkers(ctx, workers, group, cmd)
			}
			cl := chrysalis.New(rc, chrysalis.Options{Logger: log})
			host, _ := os.Hostname()
			name := fmt.Sprintf("%s-%d", host, os.Getpid())
			f, err := os.OpenFile(filepath.Join(out, name+".frames"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return err
			}
			defer f.Close()
			var lines strings.Builder
			w := &parallel.Worker{Client: rc.Client(), Reader: cl, Group: group, Consumer: name, MinIdle: claimAfter}
			err = w.Run(ctx, func(it parallel.Item, img *chrysalis.ChImage) error {
				fmt.Fprintf(&lines, "%s %s\n", it.Camera, img.ID)
				if delay > 0 { // --frame-delay: throttling (and tests)
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(delay):
					}
				}
				if images {
					return writeImage(filepath.Join(out, fmt.Sprintf("%s_%s.jpg", it.Camera, img.ID)), img)
				}
				return nil
			}, func(it parallel.Item) error {
				// One write per GOP: a worker killed mid-GOP leaves nothing of it.
				_, err := f.WriteString(lines.String())
				lines.Reset()
				if err == nil {
					err = f.Sync()
				}
				return err
			})
			if err != nil {
				return err
			}
			log.Info("replay: group done", "group", group)
			return nil
		},
	}
	rf.register(c)
	fl := c.Flags()
	fl.StringArrayVar(&cams, "camera", nil, "camera id (repeatable)")
	fl.StringVar(&fromS, "from", "", "window start TIME")
	fl.StringVar(&toS, "to", "now", "window end TIME")
	fl.StringVar(&group, "group", "", "consumer group to plan or join (default: a new one, with --workers)")
	fl.StringVarP(&out, "out", "o", "", "output directory")
	fl.IntVar(&workers, "workers", 0, "start N local worker processes")
	fl.BoolVar(&images, "images", false, "also write each frame as DIR/<camera>_<id>.jpg")
	fl.DurationVar(&claimAfter, "claim-after", 30*time.Second, "take over an item another worker held this long without finishing it")
	fl.DurationVar(&delay, "frame-delay", 0, "pause after each frame (throttling)")
	_ = fl.MarkHidden("frame-delay")
	fl.BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	return c
}

// runReplayWorkers starts n copies of this command joining group and
// waits for them; a worker that fails leaves its items to the others.
func runReplayWorkers(ctx context.Context, n int, group string, cmd *cobra.Command) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var args []string
	skip := false
	for _, a := range os.Args[1:] {
		switch {
		case skip:
			skip = false
		case a == "--workers" || a == "--group":
			skip = true
		case strings.HasPrefix(a, "--workers=") || strings.HasPrefix(a, "--group="):
		default:
			args = append(args, a)
		}
	}
	args = append(args, "--group", group)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		c := exec.CommandContext(ctx, exe, args...)
		c.Stdout, c.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
		c.Cancel = func() error { return c.Process.Signal(os.Interrupt) }
		wg.Go(func() { errs[i] = c.Run() })
	}
	wg.Wait()
	failed := 0
	for _, e := range errs {
		if e != nil {
			failed++
		}
	}
	if failed == n {
		return fmt.Errorf("replay: all %d workers failed: %w", n, errors.Join(errs...))
	}
	return nil
}
