#!/usr/bin/env bash
# Builds the bridge libFuzzer target (frame parser + router + decoders, no I/O) and runs it
# for a bounded time. Usage: scripts/fuzz.sh [seconds=60] [extra libFuzzer flags...]
# Output: .build/fuzz/bridge-fuzz, corpus in .build/fuzz/corpus, crashes in .build/fuzz/artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
out=.build/fuzz
mkdir -p "$out/corpus" "$out/artifacts"

sources=(
  Sources/Bridge/Wire/MessageIdentifier.swift
  Sources/Bridge/Wire/FrameHeader.swift
  Sources/Bridge/Wire/FrameReader.swift
  Sources/Bridge/JSON/*.swift
  Sources/Bridge/Messages/*.swift
  Sources/Bridge/Guest/RequestRouter.swift
  Sources/Bridge/Guest/OutgoingBodies.swift
  Sources/Bridge/Host/HostChecks.swift
  Tests/Fuzz/BridgeFuzz.swift
)
# FrameReader keeps its bytes in EventLoop's PageBuffer (pages of their own, over the C shims):
# build that one file as a small EventLoop module, and the shims beside it.
mkdir -p "$out/modules"
printf 'module Shims {\n  umbrella header "%s/Sources/Shims/include/Shims.h"\n  export *\n}\n' "$PWD" > "$out/modules/module.modulemap"
clang -c -O1 -g -fsanitize=address -I Sources/Shims/include Sources/Shims/shims.c -o "$out/shims.o"
swiftc -parse-as-library -O -g -swift-version 6 -sanitize=address -module-name EventLoop \
  -Xcc -fmodule-map-file="$out/modules/module.modulemap" \
  -emit-module -emit-module-path "$out/modules/EventLoop.swiftmodule" \
  -emit-object -o "$out/pagebuffer.o" Sources/EventLoop/PageBuffer.swift
swiftc -sanitize=fuzzer,address -parse-as-library -O -g -swift-version 6 \
  -I "$out/modules" -Xcc -fmodule-map-file="$out/modules/module.modulemap" \
  -module-name BridgeFuzz "${sources[@]}" "$out/pagebuffer.o" "$out/shims.o" -luring -o "$out/bridge-fuzz"

# Seed corpus: every fixture, as a body (leading type byte) and as a framed message.
if command -v python3 >/dev/null; then
  python3 - "$out/corpus" Tests/BridgeTests/Fixtures <<'PY'
import os, struct, sys, re
corpus, fixtures = sys.argv[1], sys.argv[2]
readme = open(os.path.join(fixtures, "README.md")).read()
for line in readme.splitlines():
    m = re.match(r"\| `([^`]+\.json)` \| [^|]+ \| `0x([0-9a-f]+)` \|[^|]+\| (\d+) \|", line)
    if not m: continue
    name, typ, ident = m.group(1), int(m.group(2), 16), int(m.group(3))
    body = open(os.path.join(fixtures, name), "rb").read()
    open(os.path.join(corpus, "body-" + name), "wb").write(bytes([typ >> 8 & 0xff]) + body)
    open(os.path.join(corpus, "frame-" + name), "wb").write(bytes([0, 0]) + struct.pack("<IIQ", typ, 16 + len(body), ident) + body)
PY
fi

# The Swift backtracer slows every finding down and trips ASan itself; libFuzzer reports enough.
SWIFT_BACKTRACE=enable=no "$out/bridge-fuzz" "$out/corpus" -max_total_time="$seconds" -artifact_prefix="$out/artifacts/" \
  -max_len=16384 -print_final_stats=1 "$@"
