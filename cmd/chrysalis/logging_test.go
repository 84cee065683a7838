package main

import (
	"log/slog"
	"testing"
)

// TestLoggingIsTheDefault: while a command runs, slog's default logger is
// the CLI's, so library warnings that go to slog.Default() (sinks) print
// in the CLI's format; reset restores the previous default.
func TestLoggingIsTheDefault(t *testing.T) {
	prev := slog.Default()
	log, reset := setupLogging(false)
	if slog.Default().Handler() != log.Handler() {
		t.Errorf("slog.Default() is not the CLI's logger while a command runs")
	}
	reset()
	if slog.Default() != prev {
		t.Errorf("reset did not restore slog's default logger")
	}
}
