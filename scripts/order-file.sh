#!/bin/sh
# Regenerates scripts/gcs.order, the function order the static gcs is linked with (see
# scripts/steptrace.c): runs the demo (start-up, negotiation, a busybox container, an exec, a tty
# process, teardown) against the static gcs single-stepped under steptrace, and keeps the
# functions in the order they first ran. Start-up and idle code come first, then the request paths.
# Takes a few minutes (every instruction traps). Re-run after large changes; names that no longer
# exist are ignored by the linker, new functions are placed after the listed ones.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d /tmp/gcs-order.XXXXXX)
trap 'rm -rf "$work"' EXIT

make static
swift build --product gcs-demo
cc -O2 -Wall -Werror -o "$work/steptrace" scripts/steptrace.c
nm -n -S --defined-only .build-static/release/gcs > "$work/symbols.txt"
cat > "$work/gcs" <<WRAPPER
#!/bin/sh
STEP_SYMBOLS="$work/symbols.txt" STEP_OUT="$work/order.txt" exec "$work/steptrace" "$root/.build-static/release/gcs" "\$@"
WRAPPER
chmod +x "$work/gcs"
GCS_BINARY="$work/gcs" .build/debug/gcs-demo
# steptrace writes the list when the demo stops gcs; wait for it to land.
for _ in $(seq 1 100); do [ -s "$work/order.txt" ] && break; sleep 0.1; done
cp "$work/order.txt" scripts/gcs.order
echo "scripts/gcs.order: $(wc -l < scripts/gcs.order) functions"
