package testx

import (
	"os"
	"strings"
	"testing"
)

// Threads counts this process's threads named name (/proc/self/task/*/comm,
// e.g. the decoders' "chrysalis-dec"); without /proc the test is skipped.
func Threads(t testing.TB, name string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	n := 0
	for _, e := range ents {
		if comm, err := os.ReadFile("/proc/self/task/" + e.Name() + "/comm"); err == nil &&
			strings.TrimSpace(string(comm)) == name {
			n++
		}
	}
	return n
}
