package rediscache_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/cache/rediscache"
	"github.com/chryscloud/chrysalis-go/internal/testredis"
)

// TestWrongTypeNamesTheKey: a camera key holding another kind of value
// (another program's key) fails reads with an error naming the key and the
// kind expected, single commands and pipelines alike.
func TestWrongTypeNamesTheKey(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{})
	ctx := context.Background()
	c, err := rediscache.Dial(ctx, rediscache.ConnOptions{URL: srv.URL()}, rediscache.Options{Layout: rediscache.LayoutEdge})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Client().Set(ctx, rediscache.QueueKey("cam"), "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Client().RPush(ctx, rediscache.CodecKey("cam2"), "not a codec").Err(); err != nil {
		t.Fatal(err)
	}
	_, rangeErr := c.Range(ctx, "cam", cache.MinID, cache.MaxID, 0)
	_, statsErr := c.Stats(ctx, "cam") // a pipeline
	_, codecErr := c.Codec(ctx, "cam2")
	for _, tc := range []struct {
		name     string
		err      error
		key, typ string
	}{
		{"Range", rangeErr, rediscache.QueueKey("cam"), "stream"},
		{"Stats", statsErr, rediscache.QueueKey("cam"), "stream"},
		{"Codec", codecErr, rediscache.CodecKey("cam2"), ""},
	} {
		t.Logf("%s: %v", tc.name, tc.err)
		var wt *rediscache.WrongTypeError
		if !errors.Is(tc.err, rediscache.ErrWrongType) || !errors.As(tc.err, &wt) || wt.Key != tc.key ||
			!strings.Contains(tc.err.Error(), `"`+tc.key+`"`) || (tc.typ != "" && wt.Want != tc.typ) {
			t.Errorf("%s: %v; want a WrongTypeError naming %q (a %s)", tc.name, tc.err, tc.key, tc.typ)
		}
		if strings.Count(tc.err.Error(), "\n") != 0 {
			t.Errorf("%s: not one line: %q", tc.name, tc.err)
		}
	}
}
