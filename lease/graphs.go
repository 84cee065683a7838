package lease

import (
	"context"

	"github.com/chryscloud/chrysalis-go/flow"
)

// RunGraphs is Run for analytics workers: for each camera this worker
// holds, build makes a graph (typically source.Live on that camera →
// operators → sinks) and it runs until the lease is lost, given up for
// balance, or ctx ends. N processes running RunGraphs with the same
// Options.Prefix and camera list share the cameras: each camera's graph
// runs in exactly one of them, and a dead worker's cameras move to the
// others within the lease time. Use a Prefix apart from the ingest's, so
// ingest and analytics leases do not compete.
func RunGraphs(ctx context.Context, o Options, list func(ctx context.Context) ([]string, error),
	build func(ctx context.Context, camera string) (*flow.Graph, error)) error {
	return Run(ctx, o, list, func(ctx context.Context, cam string) error {
		g, err := build(ctx, cam)
		if err != nil {
			return err
		}
		if err := g.Run(ctx); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		return errGraphEnded // a graph that ended on its own is run again
	})
}

type graphEnded struct{}

func (graphEnded) Error() string { return "lease: the graph ended; running it again" }

var errGraphEnded error = graphEnded{}
