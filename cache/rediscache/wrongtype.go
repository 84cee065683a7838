package rediscache

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/chryscloud/chrysalis-go/cache"
)

// ErrWrongType: a key holds another kind of value than the command needs
// (Redis's WRONGTYPE reply), e.g. a string where a camera's stream should
// be. Errors wrapping it are *WrongTypeError, naming the key.
var ErrWrongType = errors.New("redis: key holds the wrong kind of value")

// WrongTypeError is a WRONGTYPE reply with the key and the kind of value
// the command expected.
type WrongTypeError struct {
	Key  string // the (first) key of the command
	Want string // "stream", "hash", "string"... or "" when unknown
	Cmd  string // the command, upper case
	Err  error  // go-redis's error
}

func (e *WrongTypeError) Error() string {
	want := e.Want
	if want == "" {
		want = "the kind of value " + e.Cmd + " needs"
	} else {
		want = "a " + want
	}
	return fmt.Sprintf("redis: key %q is not %s (%s: %v); is another program using this key?", e.Key, want, e.Cmd, e.Err)
}

func (e *WrongTypeError) Unwrap() []error { return []error{ErrWrongType, cache.ErrRefused, e.Err} }

// isWrongType reports a WRONGTYPE reply. go-redis has no typed error or
// helper for it (it has for NOPERM, auth, MOVED...), so this is the one
// match on reply text: a server error reply starts with its code.
func isWrongType(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "WRONGTYPE")
}

// wrongType returns err, cmd's error, as a *WrongTypeError if it is a
// WRONGTYPE reply.
func wrongType(cmd redis.Cmder, err error) error {
	if err == nil || !isWrongType(err) {
		return err
	}
	var wt *WrongTypeError
	if errors.As(err, &wt) {
		return err
	}
	name := strings.ToLower(cmd.Name())
	args := cmd.Args()
	key := ""
	if len(args) > 1 {
		key, _ = args[1].(string)
	}
	if name == "xread" || name == "xreadgroup" { // ... STREAMS key [key ...] id [id ...]
		key = ""
		for i := 1; i+1 < len(args); i++ {
			if s, ok := args[i].(string); ok && strings.EqualFold(s, "streams") {
				key, _ = args[i+1].(string)
				break
			}
		}
	}
	return &WrongTypeError{Key: key, Want: wantType(name), Cmd: strings.ToUpper(name), Err: err}
}

// wantType is the kind of value a command works on.
func wantType(name string) string {
	switch name {
	case "get", "set", "mget", "mset", "getrange", "strlen", "append", "incr", "incrby", "decr", "getset", "setex", "getex":
		return "string"
	}
	if name == "" {
		return ""
	}
	switch name[0] {
	case 'x':
		return "stream"
	case 'h':
		return "hash"
	case 'z':
		return "sorted set"
	case 'l':
		return "list"
	}
	return ""
}

// wrongTypeHook names the key and the expected type in WRONGTYPE replies.
type wrongTypeHook struct{}

func (wrongTypeHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (wrongTypeHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		// The client sets cmd's error to what this returns.
		return wrongType(cmd, next(ctx, cmd))
	}
}

func (wrongTypeHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err == nil {
			return nil
		}
		for _, c := range cmds { // a pipeline's commands carry their own errors
			if isWrongType(c.Err()) {
				c.SetErr(wrongType(c, c.Err()))
			}
		}
		for _, c := range cmds { // the first error, as go-redis returns it
			if c.Err() != nil {
				return c.Err()
			}
		}
		return err
	}
}
