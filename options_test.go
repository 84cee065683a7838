package chrysalis_test

import (
	"errors"
	"testing"

	chrysalis "github.com/chryscloud/chrysalis-go"
)

func TestCameraOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		o          chrysalis.CameraOptions
		srcW, srcH int
		ok         bool
	}{
		{chrysalis.CameraOptions{}, 1280, 720, true},
		{chrysalis.CameraOptions{Width: 640}, 1280, 720, true},
		{chrysalis.CameraOptions{Width: 5120, Height: 2880}, 1280, 720, true}, // 4x: the limit
		{chrysalis.CameraOptions{Width: 16384}, 0, 0, true},                   // source unknown
		{chrysalis.CameraOptions{Width: 5121}, 1280, 720, false},
		{chrysalis.CameraOptions{Height: 2881}, 1280, 720, false},
		{chrysalis.CameraOptions{Width: 100000}, 0, 0, false},
		{chrysalis.CameraOptions{Height: 16385}, 0, 0, false},
		{chrysalis.CameraOptions{Width: -1}, 0, 0, false},
		{chrysalis.CameraOptions{Threads: -2}, 0, 0, false},
		{chrysalis.CameraOptions{LiveThreads: -1}, 0, 0, false},
	} {
		err := tc.o.CheckSize(tc.srcW, tc.srcH)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, chrysalis.ErrBadOptions)) {
			t.Errorf("%+v on %dx%d: %v, want ok=%v (ErrBadOptions)", tc.o, tc.srcW, tc.srcH, err, tc.ok)
		}
		if tc.srcW == 0 {
			if verr := tc.o.Validate(); (verr == nil) != tc.ok {
				t.Errorf("Validate(%+v) = %v, want ok=%v", tc.o, verr, tc.ok)
			}
		}
	}
}
