#!/usr/bin/env python3
"""Compares two resident-page snapshots of gcs (AgentBench with BENCH_PAGEMAP_DIR set) and names
what the second has that the first has not: per mapping, pages gained; for the binary's mappings,
the symbols on each gained page (from `nm -n -S` of the same binary).

usage: scripts/resident-pages.py BINARY BEFORE.txt AFTER.txt

BINARY must be the one measured and not position-independent (the static gcs, `make static`,
which `make bench-agent` measures): its `nm` addresses are its run-time addresses. A page is
named by the symbols that overlap it, found walking back from its end: an earlier, larger
symbol that also covers it may be left out."""
import bisect, collections, subprocess, sys

def load(path):
    maps, pages, current = [], collections.defaultdict(set), None
    for line in open(path):
        if line.startswith("map "):
            fields = line[4:].split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            current = (start, end, fields[1], fields[5] if len(fields) > 5 else "[anon]")
            maps.append(current)
        else:
            pages[current].add(int(line, 16))
    return maps, pages

binary, before_path, after_path = sys.argv[1:4]
_, before = load(before_path)
maps, after = load(after_path)
symbols = []
for line in subprocess.run(["nm", "-n", "-S", "--defined-only", binary], capture_output=True, text=True).stdout.splitlines():
    f = line.split()
    if len(f) == 4:
        symbols.append((int(f[0], 16), int(f[1], 16), f[3]))
starts = [s[0] for s in symbols]
before_all = set().union(*before.values()) if before else set()
for m in maps:
    gained = sorted(after[m] - before_all)
    lost = len([p for p in before_all if m[0] <= p < m[1]]) - len(after[m] & before_all)
    if not gained and not lost:
        continue
    print(f"{m[0]:x}-{m[1]:x} {m[2]} {m[3]}: {len(after[m])} pages, +{len(gained)} -{lost}")
    if m[3].endswith("gcs") and "x" in m[2] and "-v" in sys.argv:
        for page in gained:
            i = bisect.bisect_right(starts, page + 4095)
            names = []
            while i > 0 and symbols[i - 1][0] + symbols[i - 1][1] > page:
                names.append(symbols[i - 1][2]); i -= 1
            demangled = subprocess.run(["swift", "demangle", "--simplified", "--compact"], input="\n".join(names[:4]), capture_output=True, text=True).stdout.split("\n")
            print(f"  {page:x}: {len(names)} symbols: " + " | ".join(d[:90] for d in demangled if d))
