// Command chrysalis ingests cameras into a frame cache and reads images,
// clips and probes back out of it. Run `chrysalis --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/redact"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1 // runtime failure
	exitUsage    = 2 // bad flags or input
	exitCache    = 3 // cache unreachable, auth or TLS failure
	exitNotFound = 4 // unknown camera, empty cache, nothing at that time
)

// usageError marks bad user input (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.Is(err, cache.ErrBadTime):
		return exitUsage
	case errors.Is(err, cache.ErrMisconfigured):
		return exitUsage // the URL names one node of a cluster
	case errors.Is(err, rediscache.ErrAuth), errors.Is(err, rediscache.ErrPermission), errors.Is(err, rediscache.ErrTLS),
		errors.Is(err, rediscache.ErrUnreachable):
		return exitCache
	case errors.Is(err, cache.ErrUnknownCamera), errors.Is(err, cache.ErrEmpty), errors.Is(err, cache.ErrNotFound):
		return exitNotFound
	}
	return exitFailure
}

// hint adds the fix to errors users meet often.
func hint(err error) string {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	switch {
	case errors.Is(err, rediscache.ErrAuth):
		return msg + " — set the password in --redis-url redis://[user]:PASS@host:port"
	case errors.Is(err, rediscache.ErrPermission):
		return msg + " — the Redis user needs +@read on the camera's keys (and +@write for ingest)"
	case errors.Is(err, rediscache.ErrNoTLS):
		return msg
	case errors.Is(err, rediscache.ErrTLS):
		return msg + " — use rediss:// and --tls-ca FILE with the server's CA certificate"
	case errors.Is(err, rediscache.ErrUnreachable):
		return msg + " — is redis-server running at that address? (--redis-url or CHRYSALIS_REDIS_URL)"
	case errors.Is(err, cache.ErrUnknownCamera):
		return msg + " — is `chrysalis ingest --camera ID` running against this Redis?"
	}
	return msg
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newRootCmd()
	var err error
	if _, _, ferr := root.Find(os.Args[1:]); ferr != nil {
		err = usagef("%v (see `chrysalis --help`)", ferr)
	} else {
		err = root.ExecuteContext(ctx)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chrysalis: "+hint(err))
	}
	os.Exit(exitCode(err))
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "chrysalis",
		Short: "Live video analytics: ingest cameras into a frame cache, read images and clips back",
		Long: `chrysalis ingests cameras (RTMP push, RTSP/RTMP/HTTP pull, files in real time)
into a bounded frame cache (Redis Streams in the Chrysalis edge proxy's layout,
or in-process for the demo) and reads probes, images and clips back out.

Exit codes: 0 ok, 1 failure, 2 bad usage or input, 3 Redis unreachable/auth/
permission/TLS,
4 unknown camera, empty cache or nothing at that time.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef("%v (see `%s --help`)", err, c.CommandPath())
	})
	root.AddCommand(subcommands()...)
	return root
}

// noArgs rejects positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q (see `%s --help`)", args[0], cmd.CommandPath())
	}
	return nil
}

// redisFlags are the connection flags every cache-reading command shares.
type redisFlags struct {
	url   string
	tlsCA string
	layoutFlags
}

func (f *redisFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.url, "redis-url", os.Getenv("CHRYSALIS_REDIS_URL"),
		"Redis URL redis://[user:pass@]host:port/db, rediss:// for TLS; a cluster: redis://host1:port?addr=host2:port&addr=host3:port; sentinels: redis+sentinel://host:26379,host:26379/MASTER (env CHRYSALIS_REDIS_URL)")
	hideSecretDefault(c, "redis-url")
	c.Flags().StringVar(&f.tlsCA, "tls-ca", "", "PEM CA certificate file to verify a rediss:// server")
	f.layoutFlags.register(c)
}

// hideSecretDefault shows a flag's default (taken from the environment)
// with its password masked in --help.
func hideSecretDefault(c *cobra.Command, name string) {
	if fl := c.Flags().Lookup(name); fl != nil {
		fl.DefValue = redact.URL(fl.DefValue)
	}
}

func (f *redisFlags) dial(ctx context.Context, o rediscache.Options) (*rediscache.Cache, error) {
	if f.url == "" {
		return nil, usagef("no Redis: pass --redis-url redis://host:6379 or set CHRYSALIS_REDIS_URL")
	}
	if err := checkRedisURL(f.url); err != nil {
		return nil, err
	}
	co, err := f.connOptions()
	if err != nil {
		return nil, err
	}
	return rediscache.Dial(ctx, co, o)
}
