# swift-gcs: build, test, benchmark. `make demo` and `make test` are the README's two commands.
# The toolchain at /opt/swift (where the README says it is) when swift is not on PATH.
SWIFT        ?= $(or $(shell command -v swift 2>/dev/null),$(wildcard /opt/swift/usr/bin/swift),swift)
# init/test.sh runs python3 listeners; prlimit (util-linux) starts a test's gcs with a low limit.
APT_PACKAGES := liburing-dev runc busybox-static python3 util-linux
PIN          ?= taskset -c 0
RELEASE_BIN   = .build/release
# The shipping gcs: one fully static executable (no Swift runtime or glibc shared objects in
# the VM image), which is also what AgentBench measures. Linked by lld with every function in its
# own section, in the order of scripts/gcs.order (start-up and request paths first, see
# scripts/order-file.sh): the code gcs runs then sits in a few contiguous pages, not in ~90
# scattered 64 KiB fault-around windows, which more than halves its resident memory.
ORDER_FILE    = scripts/gcs.order
STATIC_FLAGS  = --static-swift-stdlib -Xswiftc -static-executable -Xlinker --gc-sections \
                -Xswiftc -use-ld=lld -Xswiftc -Xfrontend -Xswiftc -function-sections \
                $(if $(wildcard $(ORDER_FILE)),-Xlinker --symbol-ordering-file=$(ORDER_FILE) -Xlinker --no-warn-symbol-ordering)
STATIC_GCS    = .build-static/release/gcs

.PHONY: all deps build release static test test-swift test-init init bench bench-relay bench-bridge bench-agent demo fuzz clean

all: build

# Installs the Debian packages the build, the tests and the demo need, when any is missing.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

static: deps
	@# SwiftPM does not relink when only the order file changed.
	@if [ -f $(ORDER_FILE) ] && [ $(ORDER_FILE) -nt $(STATIC_GCS) ]; then rm -f $(STATIC_GCS); fi
	$(SWIFT) build -c release --product gcs --scratch-path .build-static $(STATIC_FLAGS)

init:
	$(MAKE) -C init

test: deps test-init test-swift

# The end-to-end tests hold a few thousand descriptors at once (host ends of stdio streams): up
# to the hard limit, where a login's soft limit may be 1,024.
test-swift: deps
	$(SWIFT) build --build-tests
	ulimit -n "$$(ulimit -Hn)"; $(SWIFT) test --skip-build

test-init:
	$(MAKE) -C init test

# Benchmarks are pinned to one CPU (cross-CPU wake-ups make this machine flip speed by up to 3x);
# each compares against a baseline measured in the same run and writes Benchmarks/results/*.json.
bench: bench-relay bench-bridge bench-agent

bench-relay: release
	$(PIN) $(RELEASE_BIN)/RelayBench $(BENCH_ARGS)

bench-agent: release static
	$(PIN) $(RELEASE_BIN)/AgentBench --gcs $(STATIC_GCS) $(BENCH_ARGS)

bench-bridge: release
	$(PIN) $(RELEASE_BIN)/BridgeBench $(BENCH_ARGS)

# The main job: the real gcs on the Unix-socket transport, driven by a local host over the
# bridge, running a busybox container with runc.
demo: deps
	$(SWIFT) build --product gcs
	$(SWIFT) build --product gcs-demo
	.build/debug/gcs-demo

fuzz:
	@if [ -x scripts/fuzz.sh ]; then scripts/fuzz.sh; else echo "fuzz target not present yet"; exit 1; fi

clean:
	rm -rf .build .build-* init/build Benchmarks/results
