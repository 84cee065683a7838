package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gocv.io/x/gocv"

	"github.com/chryscloud/chrysalis-go/cache/rediscache"
)

// versionInfo is what `chrysalis version` reports.
type versionInfo struct {
	Chrysalis string `json:"chrysalis"`
	Go        string `json:"go"`
	FFmpeg    string `json:"ffmpeg"`
	OpenCV    string `json:"opencv"`
	GoCV      string `json:"gocv"`
	Redis     string `json:"redis,omitempty"`
}

func newVersionCmd() *cobra.Command {
	var rf redisFlags
	var asJSON bool
	c := &cobra.Command{
		Use:   "version [--redis-url URL] [--json]",
		Short: "Print the versions of chrysalis, FFmpeg, OpenCV and (with --redis-url) the Redis server",
		Example: `  chrysalis version
  chrysalis version --redis-url redis://localhost:6379 --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionInfo{Chrysalis: "(devel)", Go: runtime.Version(), FFmpeg: ffmpegVersion(),
				OpenCV: gocv.OpenCVVersion(), GoCV: gocv.Version()}
			if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
				v.Chrysalis = bi.Main.Version
			}
			var rerr error
			if rf.url != "" {
				if v.Redis, rerr = redisVersion(cmd.Context(), rf); rerr != nil {
					v.Redis = ""
				}
			}
			if asJSON {
				if err := json.NewEncoder(cmd.OutOrStdout()).Encode(v); err != nil {
					return err
				}
				return rerr
			}
			fmt.Fprintf(cmd.OutOrStdout(), "chrysalis %s (%s)\nFFmpeg    %s (libavcodec %s)\nOpenCV    %s (gocv %s)\n",
				v.Chrysalis, v.Go, v.FFmpeg, avcodecVersion(), v.OpenCV, v.GoCV)
			switch {
			case v.Redis != "":
				fmt.Fprintf(cmd.OutOrStdout(), "Redis     %s\n", v.Redis)
			case rerr == nil:
				fmt.Fprintln(cmd.OutOrStdout(), "Redis     (pass --redis-url to ask the server)")
			}
			return rerr
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().StringVar(&rf.url, "redis-url", os.Getenv("CHRYSALIS_REDIS_URL"), "ask this Redis server for its version (env CHRYSALIS_REDIS_URL)")
	hideSecretDefault(c, "redis-url")
	c.Flags().StringVar(&rf.tlsCA, "tls-ca", "", "PEM CA certificate file for a rediss:// server")
	return c
}

// redisVersion asks the server (INFO server) for redis_version.
func redisVersion(ctx context.Context, rf redisFlags) (string, error) {
	log, reset := setupLogging(false)
	defer reset()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rc, err := rf.dial(ctx, rediscache.Options{Logger: log})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	info, err := rc.Client().Info(ctx, "server").Result()
	if err != nil {
		return "", rediscache.Classify(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v, nil
		}
	}
	return "unknown", nil
}
