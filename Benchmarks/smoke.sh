#!/usr/bin/env bash
# Runs every side-by-side comparison in Benchmarks/compare in smoke mode (a few seconds each):
# what CI's benchmark job runs. Never fails on numbers; fails when a comparison cannot run (a
# side does not start, does not check tokens or cannot hold its connections). Each comparison
# still runs when an earlier one failed; the summary names the failures.
#
# Usage: Benchmarks/smoke.sh    (results: Benchmarks/results/*-smoke.md)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

failed=()
for comparison in proxy tls-jwt idle-http relay-fanout relay-fanout-redis idle-websocket; do
    echo "== smoke: $comparison"
    if ! "Benchmarks/compare/$comparison.sh" --smoke; then
        echo "smoke: $comparison failed" >&2
        failed+=("$comparison")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "smoke: failed: ${failed[*]}" >&2
    exit 1
fi
echo "smoke: every comparison ran; results in Benchmarks/results/"
