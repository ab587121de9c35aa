#!/usr/bin/env bash
# Runs the micro benchmarks (the ordo-one/benchmark package in this folder: route matching, JWT
# verification cold and cached, the proxy's header work) and writes a summary table of the
# median and p99 time and the allocations per operation to Benchmarks/results/micro-<date>.md.
#
# Usage: Benchmarks/micro.sh [swift package benchmark options, e.g. --target Routing]
#   The first run builds the gateway and the benchmark tooling in release mode (several minutes).
set -euo pipefail
cd "$(dirname "$0")"
RAW=$(mktemp /tmp/gateway-micro.XXXXXX)
trap 'rm -f "$RAW"' EXIT

swift package benchmark --no-progress "$@" > "$RAW" 2>&1 || { cat "$RAW" >&2; exit 1; }

OUT="results/micro-$(date -u +%Y-%m-%d).md"
mkdir -p results
python3 - "$RAW" "$*" "$(git rev-parse --short HEAD)" > "$OUT" <<'PY'
import datetime, os, platform, re, sys
raw, options, commit = sys.argv[1], sys.argv[2], sys.argv[3]
lines = open(raw, encoding="utf-8").read().splitlines()
target, name, rows, pending = None, None, [], {}
for index, line in enumerate(lines):
    stripped = line.strip()
    if line.startswith("│"):
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if cells[0].startswith("Time (wall clock)") or cells[0].startswith("Malloc (total)"):
            pending[cells[0]] = (cells[3], cells[6])
        continue
    if stripped and not stripped.startswith(("╞", "├", "╘", "╒", "=")):
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        previous = lines[index - 1].strip() if index >= 1 else ""
        if following.startswith("=") and previous.startswith("="):
            if name and pending: rows.append((target, name, dict(pending)))
            target, name, pending = stripped, None, {}
        elif following.startswith("╒"):
            if name and pending: rows.append((target, name, dict(pending)))
            name, pending = stripped, {}
if name and pending: rows.append((target, name, dict(pending)))
print("# Micro benchmarks (ordo-one/benchmark)")
print()
print(f"Command: `Benchmarks/micro.sh{(' ' + options) if options else ''}` (`swift package benchmark` in `Benchmarks/`; "
      "per operation: median and p99 wall-clock time, median mallocs)")
print()
print(f"Machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}, commit {commit}, "
      f"date {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%MZ')}")
print()
print("| suite | benchmark | time p50 | time p99 | mallocs p50 |")
print("|---|---|---|---|---|")
for target, name, metrics in rows:
    time_key = next((key for key in metrics if key.startswith("Time")), None)
    unit = re.search(r"\((ns|μs|us|ms|s)\)", time_key or "")
    unit = unit.group(1) if unit else ""
    p50, p99 = metrics.get(time_key, ("-", "-"))
    mallocs = next((value[0] for key, value in metrics.items() if key.startswith("Malloc")), "-")
    print(f"| {target} | {name} | {p50} {unit} | {p99} {unit} | {mallocs} |")
PY
cat "$OUT"
