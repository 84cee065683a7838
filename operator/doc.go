// Package operator provides the flow.Operators of Chrysalis Go: throttle,
// drop-stale, keyframes-only, map/filter, motion detection and time-window
// replay.
//
// Every operator follows flow's rules: it reads in until in is closed
// (then returns nil) or ctx ends (then returns ctx.Err()), sends with a
// select on ctx.Done, never closes out, and owns each image it receives
// until it sends it on or releases it. Operators that drop images release
// them and count them. Operators are configured through exported struct
// fields (documented defaults) and built with the constructor functions;
// their counters are safe to read from any goroutine while Run runs.
//
// Time-based operators (Throttle, Motion's debounce) use the frames'
// timestamps (ChImage.Time), never the wall clock, so they behave the same
// on a live camera, a fast replay and a test with synthetic time.
// DropStale is the exception by design: age is wall-clock now minus the
// frame's time.
//
// Naming: stateless or self-describing operators are made by plain
// functions (Throttle(5), KeyframesOnly(), Map(f)); operators with several
// settings are struct literals (&Motion{Threshold: 8}, &DropStale{MaxAge:
// time.Second}), whose zero fields are documented defaults. Window replay,
// which reads the cache, is package replay.
package operator
