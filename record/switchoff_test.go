package record_test

import (
	"context"
	"testing"
	"time"

	chrysalis "github.com/chryscloud/chrysalis-go"
	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/testclip"
	"github.com/chryscloud/chrysalis-go/record"
)

// A switch-off is followed even while the recording's start cannot be
// found (here: switched on at a time the cache cannot name, before 1970),
// instead of retrying forever with the camera still on.
func TestSwitchOffWhileStartFails(t *testing.T) {
	mc := cache.NewMemory(cache.Retention{MaxAge: time.Hour})
	defer mc.Close()
	testclip.Load(t, "clip720.mp4").Append(t, mc, "cam", time.Now().Add(-10*time.Second).UnixMilli(), 40)
	cl := chrysalis.New(mc, chrysalis.Options{})
	defer cl.Close()
	rec, err := record.New(cl, []string{"cam"}, record.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	ctx := context.Background()
	at := time.Unix(0, 0).Add(-time.Hour) // 1969
	if err := rec.StartCamera(ctx, "cam", at); err != nil {
		t.Fatal(err)
	}
	if err := rec.StopCamera(ctx, "cam", at); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "switched off", func() bool { return !stats(t, rec, "cam").Recording })
}
