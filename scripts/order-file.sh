#!/bin/sh
# Regenerates scripts/gcs.order, the function order the static gcs is linked with (see
# scripts/steptrace.c). Two training runs drive the static gcs single-stepped under steptrace,
# which keeps the functions in the order they first ran:
#  1. AgentBench scaled down 1000x (no-op requests, execs with and without stdio, tty output,
#     ten tty processes signalled and waited for): the request paths of processes in the VM;
#  2. the demo (a busybox container, an exec, a tty process, teardown): the container paths.
# The order is the first run's, then what only the second ran. Start-up and idle code come first,
# then each workload's code together, so a burst of one kind of work maps few new pages.
# Takes several minutes (every instruction traps). Re-run after code changes; names that no longer
# exist are ignored by the linker, new functions are placed after the listed ones.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d /tmp/gcs-order.XXXXXX)
# A failed run leaves its traced gcs single-stepping (it runs in a session of its own): stop it.
trap 'for f in "$work"/*.pid; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null; done; rm -rf "$work"' EXIT

make static
swift build --product gcs-demo
swift build -c release --product AgentBench
cc -O2 -Wall -Werror -o "$work/steptrace" scripts/steptrace.c
nm -n -S --defined-only .build-static/release/gcs > "$work/symbols.txt"
# trace NAME COMMAND...: runs COMMAND with GCS pointing at a traced gcs, writing $work/NAME.txt.
trace() {
    name=$1; shift
    mkdir -p "$work/$name"
    cat > "$work/$name/gcs" <<WRAPPER
#!/bin/sh
echo \$\$ > "$work/$name.pid"
STEP_SYMBOLS="$work/symbols.txt" STEP_OUT="$work/$name.txt" exec "$work/steptrace" "$root/.build-static/release/gcs" "\$@"
WRAPPER
    chmod +x "$work/$name/gcs"
    GCS="$work/$name/gcs" "$@"
    # steptrace writes the list when the workload stops gcs; wait for it to land.
    for _ in $(seq 1 100); do [ -s "$work/$name.txt" ] && break; sleep 0.1; done
    [ -s "$work/$name.txt" ] || { echo "no order from the $name run" >&2; exit 1; }
    rm -f "$work/$name.pid"  # it has exited: the pid may be reused
}
export BENCH_RESULTS_DIR="$work"  # not over the real results in Benchmarks/results
trace bench sh -c '.build/release/AgentBench --scale 1000 --only rtt,exec,rate,tty,many --gcs "$GCS" > /dev/null'
trace demo sh -c 'GCS_BINARY="$GCS" GCS_DEMO_REQUEST_TIMEOUT=3600 .build/debug/gcs-demo > /dev/null'
awk '!seen[$0]++' "$work/bench.txt" "$work/demo.txt" > scripts/gcs.order
echo "scripts/gcs.order: $(wc -l < scripts/gcs.order) functions"
