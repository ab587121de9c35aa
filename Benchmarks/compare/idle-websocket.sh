#!/usr/bin/env bash
# Memory per idle WebSocket connection: N clients connect and subscribe to one channel, then
# hold, against the gateway's Fluxer Relay and against nats-server's WebSocket listener (the
# same SwiftNIO load generator in --idle mode). Each round starts the server afresh and reads its
# VmRSS from /proc before the clients connect and once they are all subscribed and the RSS has
# settled: (after - before) / N. Sides alternate over ROUNDS; writes a Markdown table.
#
# Usage: Benchmarks/compare/idle-websocket.sh [--smoke]
#   CONNECTIONS=10000 ROUNDS=3 by default; --smoke: 1,000 connections, 1 round (never fails on numbers).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CONNECTIONS=${CONNECTIONS:-10000}
ROUNDS=${ROUNDS:-3}
if [ "${1:-}" = "--smoke" ]; then CONNECTIONS=1000; ROUNDS=1; SMOKE=1; fi

. Benchmarks/compare/relay-common.sh
trap relay_cleanup EXIT

# Samples VmRSS every 0.5 s until two samples in a row are within 0.5%, at most 10 s.
settled_rss() {
    local previous=0 current
    for _ in $(seq 1 20); do
        current=$(rss_kib "$1")
        if [ "$previous" -gt 0 ] && [ $(( (current > previous ? current - previous : previous - current) * 200 )) -le "$current" ]; then
            echo "$current"; return
        fi
        previous=$current
        sleep 0.5
    done
    echo "$current"
}

measure() { # side round
    if [ "$1" = gateway ]; then start_gateway; else start_nats; fi
    local pid=$SERVER_PID port=$SERVER_PORT before after held=0 line=""
    before=$(settled_rss "$pid")
    local url=$GW_URL protocol=relay out="$WORK/idle-$1-$2.out"
    [ "$1" = nats ] && url=$NATS_URL && protocol=nats
    "$LOAD" --protocol "$protocol" --url "$url" --subscribers "$CONNECTIONS" --idle --hold 300 \
        > "$out" 2>>"$WORK/load.log" &
    local load=$!; PIDS+=("$load")
    # Ready when the generator prints its line (every client subscribed or failed), at most 120 s.
    for _ in $(seq 1 1200); do
        line=$(head -1 "$out" 2>/dev/null || true)
        [ -n "$line" ] && break
        kill -0 "$load" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$line" ]; then
        echo "$1 failed - - - -" >> "$WORK/results"
    else
        held=$(jq -r .subscribers <<<"$line")
        after=$(settled_rss "$pid")
        awk -v s="$1" -v b="$before" -v a="$after" -v n="$held" -v f="$(jq -r .failed <<<"$line")" \
            'BEGIN { printf "%s %.2f %d %d %d %d\n", s, (n > 0 ? (a - b) / n : 0), b, a, n, f }' >> "$WORK/results"
    fi
    stop_pid "$load"
    stop_pid "$pid"
}

: > "$WORK/results"
for round in $(seq 1 "$ROUNDS"); do
    measure gateway "$round"
    measure nats "$round"
done

OUT="$ROOT/Benchmarks/results/idle-websocket-$(date -u +%Y-%m-%d)${SMOKE:+-smoke}.md"
mkdir -p "$ROOT/Benchmarks/results"
col() { awk -v s="$1" -v c="$2" '$1==s && $2!="failed" {print $c}' "$WORK/results"; }
{
  echo "# Memory per idle WebSocket connection: Fluxer Relay vs nats-server"
  echo
  echo "Command: \`Benchmarks/compare/idle-websocket.sh${1:+ $1}\` ($CONNECTIONS connections, each connected and subscribed to one channel; $ROUNDS rounds in alternation, each on a freshly started server; medians; spread = min..max KiB per connection)"
  echo
  machine_facts
  echo
  echo "| side | KiB per connection (median) | spread | VmRSS before KiB | VmRSS after KiB | connections held | failed | ratio vs nats |"
  echo "|---|---|---|---|---|---|---|---|"
  nats_kib=$(col nats 2 | median)
  for side in gateway nats; do
    kib=$(col $side 2 | median)
    ratio=$(awk -v a="$kib" -v b="$nats_kib" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    echo "| $side | $kib | $(col $side 2 | sort -n | head -1)..$(col $side 2 | sort -n | tail -1) | $(col $side 3 | median) | $(col $side 4 | median) | $(col $side 5 | median) | $(col $side 6 | median) | $ratio |"
  done
  echo
  echo "Raw rounds (side, KiB per connection, VmRSS before, after, held, failed):"
  echo
  sed 's/^/    /' "$WORK/results"
} | tee "$OUT"
