# Chrysalis Go. The two commands: `make demo` and `make test`.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
export GOFLAGS ?= -mod=readonly

# Debian 12 packages the build, the demo and the tests need.
DEB_PKGS := pkg-config gcc libavcodec-dev libavformat-dev libavfilter-dev libavdevice-dev \
	libswscale-dev libswresample-dev libavutil-dev libopencv-dev ffmpeg redis-server \
	xvfb x11-apps imagemagick chromium opencv-data
# The PyAV peer of the benchmarks (the Python SDK's stack).
BENCH_PKGS := python3-av python3-redis python3-protobuf python3-numpy
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN := bin/chrysalis
DEMO_ARGS ?=
SOAK ?= 10m

.PHONY: all deps bench-deps bench-clips build test vet bench soak demo clean testdata generate fuzz

all: build

# Idempotent and fast when everything is present: dpkg-query first, apt only
# for what is missing.
deps:
	@$(MAKE) --no-print-directory install-pkgs PKGS="$(DEB_PKGS)"

bench-deps: deps
	@$(MAKE) --no-print-directory install-pkgs PKGS="$(BENCH_PKGS)"

install-pkgs:
	@missing=$$(for p in $(PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	go build -o $(BIN) ./cmd/chrysalis

vet: deps
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:" $$unformatted; exit 1; fi
	go vet ./...

test: deps vet
	go test -race -timeout 20m ./...

# Each fuzz target for a count of executions (about 20 s each here), one at
# a time: go test -fuzz takes one target per run. A count, not a duration:
# a duration -fuzztime can fail with a bare "context deadline exceeded" and
# no crasher when the deadline races a worker (golang/go#75804, fixed only in
# Go 1.27). FUZZTIME=30s (or 5000x) overrides every target's budget. Seeds
# live in each package's testdata/fuzz and run as plain tests in `make test`.
FUZZTIME ?=
FUZZ_TARGETS := ./internal/redact:FuzzURL:1000000x ./cache/rediscache:FuzzDecodeVideoFrame:250000x ./cmd/chrysalis:FuzzParseTime:200000x
fuzz: deps
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; n=$${rest#*:}; \
		budget=$(if $(FUZZTIME),$(FUZZTIME),$$n); \
		echo "fuzz $$fn ($$pkg) for $$budget"; \
		go test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $$budget $$pkg || exit 1; \
	done

# Benchmarks against peers in the same run (see bench/README.md), one
# package at a time so they do not compete for the 2 cores. The live
# benchmarks run CHRYSALIS_LIVE_FOR per side (default 60s) once, whatever
# -benchtime; the bench package ends with one PASS/FAIL line per target.
bench: bench-deps bench-clips
	go test -p 1 -run '^$$' -bench . -benchmem -benchtime 3x -timeout 0 ./...

# The hard benchmark clips (not committed): bench/clips/hard{720,1080}.mp4.
bench-clips:
	sh testdata/gen.sh hard $(CURDIR)/bench/clips

# "RSS bounded for a 10-minute live run" (bench/README.md): two demos and an
# ffmpeg peer, sampled every 5 s for $(SOAK) (bench/soak_test.go);
# `make soak SOAK=30m` runs longer.
soak: deps
	CHRYSALIS_SOAK=$(SOAK) go test -run '^$$' -bench LiveRSS -benchtime 1x -timeout 0 -v ./bench/

demo: build
	./$(BIN) demo $(DEMO_ARGS)

testdata:
	sh testdata/gen.sh

# Regenerates the committed protobuf code (needs protoc + protoc-gen-go).
generate:
	go generate ./internal/pb

clean:
	rm -rf bin chrysalis-demo
