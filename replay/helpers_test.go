package replay_test

import (
	"testing"
	"time"

	"github.com/chryscloud/chrysalis-go/flow"
	"github.com/chryscloud/chrysalis-go/internal/flowtest"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
)

// t0 is the synthetic cache time of a clip's first packet; packets are
// 40 ms apart (25 fps).
const (
	t0   = int64(1_750_000_000_000)
	step = int64(40)
)

func ms(i int) time.Time { return time.UnixMilli(testclip.MS(t0, i, step)).UTC() }

// frames, runOp and released are internal/flowtest's.
var (
	frames   = flowtest.Frames
	released = flowtest.Released
)

func runOp(t *testing.T, op flow.Operator, imgs []flow.Image) ([]flow.Image, error) {
	t.Helper()
	return flowtest.RunOp(t, op, imgs)
}
