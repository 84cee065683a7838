package rediscache_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine is still running
// after all of them: whatever a test started (a camera's decoder, a cache's
// notifier, a client's connections) must have ended by its Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
