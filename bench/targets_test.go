package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The targets of bench/README.md ("Targets"), checked by the benchmarks
// themselves: every benchmark that measures a target calls check, and
// TestMain prints one line per check, PASS or FAIL, after the run (the
// lines `make bench` ends with).

type verdict struct {
	name   string
	value  float64
	op     string // "<=", "<", ">=", "=="
	limit  float64
	unit   string
	passed bool
}

var (
	verdictsMu sync.Mutex
	verdicts   []verdict
)

// check records whether value op limit holds for target name, reports it
// as a metric of b (1 pass, 0 fail) and logs it.
func check(b *testing.B, name string, value float64, op string, limit float64, unit string) {
	b.Helper()
	var ok bool
	switch op {
	case "<=":
		ok = value <= limit
	case "<":
		ok = value < limit
	case ">=":
		ok = value >= limit
	case "==":
		ok = value == limit
	default:
		b.Fatalf("check %s: unknown op %q", name, op)
	}
	v := verdict{name: name, value: value, op: op, limit: limit, unit: unit, passed: ok}
	b.Log(v)
	verdictsMu.Lock()
	verdicts = append(verdicts, v)
	verdictsMu.Unlock()
}

func (v verdict) String() string {
	r := "FAIL"
	if v.passed {
		r = "PASS"
	}
	return fmt.Sprintf("TARGET %-4s %-48s %10.3f %-2s %g %s", r, v.name, v.value, v.op, v.limit, v.unit)
}

// printVerdicts prints the summary, with the load average as a measure of
// how busy the shared machine was.
func printVerdicts() {
	verdictsMu.Lock()
	defer verdictsMu.Unlock()
	if len(verdicts) == 0 {
		return
	}
	pass := 0
	fmt.Printf("\n--- targets (bench/README.md); at the end: load average %s, CPU pressure (some avg10) %s\n", loadavg(), cpuPressure())
	for _, v := range verdicts {
		fmt.Println(v)
		if v.passed {
			pass++
		}
	}
	fmt.Printf("--- %d of %d targets PASS\n", pass, len(verdicts))
}

// loadavg is /proc/loadavg's 1, 5 and 15 minute figures.
func loadavg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// hardRes are the benchmark clips made by `make bench-clips` (sh
// testdata/gen.sh hard bench/clips): detail and motion over the whole
// frame, 8 s, 200 frames (README.md, "Clips").
var hardRes = []res{{"720p", "hard720.mp4"}, {"1080p", "hard1080.mp4"}}

// hardClip returns the absolute path of a hard clip, or skips b naming the
// command that makes it.
func hardClip(b *testing.B, file string) string {
	b.Helper()
	path, err := filepath.Abs(filepath.Join("clips", file))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		b.Skipf("%s missing: run `make bench-clips` (sh testdata/gen.sh hard bench/clips)", path)
	}
	return path
}

// envDuration reads a duration from the environment, or def.
func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	if s := os.Getenv(name); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatalf("%s=%q: %v", name, s, err)
		}
		return d
	}
	return def
}

// buildConsumer builds bench/liveconsumer from this tree (rev "") or from
// the tree of commit rev (git archive into a temporary directory, with
// this tree's liveconsumer/main.go copied in), and returns the binary.
func buildConsumer(b *testing.B, rev string) string {
	b.Helper()
	bin, err := tryBuildConsumer(b.TempDir(), rev)
	if err != nil {
		b.Fatal(err)
	}
	return bin
}

// tryBuildConsumer is buildConsumer into dir, returning what failed.
func tryBuildConsumer(dir, rev string) (string, error) {
	bin := filepath.Join(dir, "liveconsumer")
	src, err := filepath.Abs("liveconsumer")
	if err != nil {
		return "", err
	}
	pkgDir := src
	if rev != "" {
		top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
		if err != nil {
			return "", fmt.Errorf("git: %v (the before side needs the repository)", err)
		}
		tree := filepath.Join(dir, "tree")
		if err := os.MkdirAll(tree, 0o755); err != nil {
			return "", err
		}
		cmd := exec.Command("sh", "-c", fmt.Sprintf("git -C %q archive %s | tar -x -C %q", strings.TrimSpace(string(top)), rev, tree))
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("git archive %s: %v: %s", rev, err, out)
		}
		pkgDir = filepath.Join(tree, "bench", "liveconsumer")
		if err := os.MkdirAll(pkgDir, 0o755); err != nil {
			return "", err
		}
		main, err := os.ReadFile(filepath.Join(src, "main.go"))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(pkgDir, "main.go"), main, 0o644); err != nil {
			return "", err
		}
	}
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = pkgDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building liveconsumer %s: %v\n%s", rev, err, out)
	}
	return bin, nil
}
