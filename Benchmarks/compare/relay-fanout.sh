#!/usr/bin/env bash
# Relay fan-out comparison: N WebSocket subscribers on one channel and one publisher at a fixed
# rate, against the gateway's Fluxer Relay and against nats-server's WebSocket listener, driven
# by the same SwiftNIO load generator (Benchmarks/RelayLoad), all on loopback, each side run in
# alternation ROUNDS times. Prints and writes a Markdown table with delivered messages/s,
# publish->deliver latency and the ratio to nats-server.
#
# Usage: Benchmarks/compare/relay-fanout.sh [--smoke]
#   DURATION=10 ROUNDS=3 SUBSCRIBERS="100 1000 10000" RATES="100 1000" by default; runs where
#   subscribers x rate exceeds MAX_DEMAND (1,000,000 deliveries/s) are skipped.
#   --smoke: 2 s, 1 round, 100 and 1,000 subscribers at 100 msg/s (CI: never fails on numbers).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
SUBSCRIBERS=${SUBSCRIBERS:-"100 1000 10000"}
RATES=${RATES:-"100 1000"}
MAX_DEMAND=${MAX_DEMAND:-1000000}
if [ "${1:-}" = "--smoke" ]; then DURATION=2; ROUNDS=1; SUBSCRIBERS="100 1000"; RATES="100"; SMOKE=1; fi

. Benchmarks/compare/relay-common.sh
trap relay_cleanup EXIT

start_gateway; GW_PID=$SERVER_PID
start_nats; NATS_PID=$SERVER_PID

run_load() { # side pid port url subscribers rate
    local before after json
    before=$(cpu_ticks "$2")
    local start=$(date +%s.%N)
    json=$("$LOAD" --protocol "$([ "$1" = gateway ] && echo relay || echo nats)" --url "$4" \
        --subscribers "$5" --rate "$6" --duration "$DURATION" 2>>"$WORK/load.log") || json=""
    after=$(cpu_ticks "$2")
    local wall; wall=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { print e - s }')
    wait_no_connections "$3"
    if [ -z "$json" ]; then echo "$5 $6 $1 0 0 0 0 0 0 failed" >> "$WORK/results"; return; fi
    echo "$json" >> "$WORK/raw.jsonl"
    # Server CPU over the whole run (connect, publish, drain), in % of one core.
    local cpu; cpu=$(awk -v d=$((after - before)) -v hz="$(getconf CLK_TCK)" -v w="$wall" 'BEGIN { printf "%.0f", d / hz / w * 100 }')
    jq -r --arg side "$1" --arg cpu "$cpu" \
        '"\(.subscribers) \(.rate|floor) \($side) \(.delivered_per_s) \(.p50_ms) \(.p99_ms) \(.delivery_ratio) \($cpu) \(.loadgen_cpu_pct) failed=\(.failed),unsub=\(.unsubscribed),closed=\(.closed)"' \
        <<<"$json" >> "$WORK/results"
}

: > "$WORK/results"
for n in $SUBSCRIBERS; do
  for rate in $RATES; do
    if [ $((n * rate)) -gt "$MAX_DEMAND" ]; then continue; fi
    for round in $(seq 1 "$ROUNDS"); do
      run_load gateway "$GW_PID" "$GW_PORT" "$GW_URL" "$n" "$rate"
      run_load nats "$NATS_PID" "$NATS_WS_PORT" "$NATS_URL" "$n" "$rate"
    done
  done
done

OUT="$ROOT/Benchmarks/results/relay-fanout-$(date -u +%Y-%m-%d)${SMOKE:+-smoke}.md"
mkdir -p "$ROOT/Benchmarks/results"
col() { awk -v n="$1" -v r="$2" -v s="$3" -v c="$4" '$1==n && $2==r && $3==s {print $c}' "$WORK/results"; }
{
  echo "# Relay fan-out: Fluxer Relay vs nats-server (WebSocket)"
  echo
  echo "Command: \`Benchmarks/compare/relay-fanout.sh${1:+ $1}\` ($DURATION s of publishing per run, $ROUNDS rounds in alternation, medians; spread = min..max delivered msgs/s; payload 128 bytes; Benchmarks/RelayLoad with 2 event loops)"
  echo
  machine_facts
  echo
  echo "| subscribers | publish msg/s | side | delivered msgs/s (median) | spread | delivered % | p50 ms | p99 ms | server CPU % | loadgen CPU % | ratio vs nats | notes |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  for n in $SUBSCRIBERS; do
    for rate in $RATES; do
      [ $((n * rate)) -gt "$MAX_DEMAND" ] && continue
      nats_rate=$(col "$n" "$rate" nats 4 | median)
      for side in gateway nats; do
        rps=$(col "$n" "$rate" $side 4 | median)
        low=$(col "$n" "$rate" $side 4 | sort -n | head -1)
        high=$(col "$n" "$rate" $side 4 | sort -n | tail -1)
        ratio=$(awk -v a="$rps" -v b="$nats_rate" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
        pct=$(col "$n" "$rate" $side 7 | median | awk '{ if ($1 == "-") print "-"; else printf "%.1f", $1 * 100 }')
        notes=$(col "$n" "$rate" $side 10 | sort -u | grep -v '^failed=0,unsub=0,closed=0$' | tr '\n' ' ' || true)
        echo "| $n | $rate | $side | $rps | $low..$high | $pct | $(col "$n" "$rate" $side 5 | median) | $(col "$n" "$rate" $side 6 | median) | $(col "$n" "$rate" $side 8 | median) | $(col "$n" "$rate" $side 9 | median) | $ratio | ${notes:-} |"
      done
    done
  done
} | tee "$OUT"
