package main

import "github.com/spf13/cobra"

// subcommands lists the CLI's commands; each lives in its own file.
func subcommands() []*cobra.Command {
	return []*cobra.Command{
		newIngestCmd(),
		newProbeCmd(),
		newLatestCmd(),
		newSnapshotCmd(),
		newExportCmd(),
		newDemoCmd(),
		newWatchCmd(),
		newRecordCmd(),
		newReplayCmd(),
		newVersionCmd(),
	}
}
