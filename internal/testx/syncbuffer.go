package testx

import (
	"bytes"
	"sync"
)

// SyncBuffer is an io.Writer safe for concurrent writes and for reading
// while they happen: a process's stderr or a logger a test looks at while
// the code under test still writes. The zero value is ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
