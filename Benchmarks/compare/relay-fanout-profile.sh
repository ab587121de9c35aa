#!/usr/bin/env bash
# What one relay delivery costs the gateway: CPU time (user and system, from /proc) at full
# speed, instructions under callgrind (which do not move with the machine's load) and, with
# STRACE=1, system calls. N subscribers on one channel and one publisher at RATE msg/s
# (Benchmarks/RelayLoad, the load of relay-fanout.sh). Each measure takes a SHORT and a LONG
# run and charges the difference (CPU, instructions) to the difference in deliveries, so
# connecting and subscribing the subscribers cancels out.
#
# Usage: Benchmarks/compare/relay-fanout-profile.sh [GATEWAY_BINARY...]
#   Without arguments, builds and measures this checkout's release binary.
#   SUBSCRIBERS=2000 RATE=100 SHORT=2 LONG=6: the CPU-time runs (2 event loops, as relay-fanout.sh).
#   CALLGRIND=1 CG_SUBSCRIBERS=200 CG_RATE=20: also instructions per delivery under callgrind
#   (1 event loop; valgrind runs the gateway about 50 times slower, hence the smaller load).
#   STRACE=1: also system calls per delivery in a LONG run under `strace -c -f` (slowed down,
#   so more publications pile up per write than at full speed).
#   PERF_RECORD=dir: a `perf record -g` profile (cpu-clock) of each binary's LONG run in dir/<n>.data.
set -euo pipefail
cd "$(dirname "$0")/../.."
SUBSCRIBERS=${SUBSCRIBERS:-2000}
RATE=${RATE:-100}
SHORT=${SHORT:-2}
LONG=${LONG:-6}
CG_SUBSCRIBERS=${CG_SUBSCRIBERS:-200}
CG_RATE=${CG_RATE:-20}
RELAY_NEEDS_NATS=0
BINARIES=("$@")
if [ ${#BINARIES[@]} -gt 0 ]; then GATEWAY_BINARY=${BINARIES[0]}; fi
. Benchmarks/compare/relay-common.sh
trap relay_cleanup EXIT
if [ ${#BINARIES[@]} -eq 0 ]; then BINARIES=("$GATEWAY"); fi
need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
if [ "${CALLGRIND:-0}" = 1 ]; then need valgrind valgrind; need gcc gcc; fi
if [ "${STRACE:-0}" = 1 ]; then need strace strace; fi
if [ -n "${PERF_RECORD:-}" ]; then need perf linux-perf; fi

# One load run against the gateway ($GW_PID): seconds subscribers rate; prints the deliveries.
load_run() {
    local json
    json=$("$LOAD" --protocol relay --url "$GW_URL" --subscribers "$2" --rate "$3" --duration "$1" \
        --ready-timeout 120 2>>"$WORK/load.log")
    wait_no_connections "$GW_PORT"
    jq -r '.delivered' <<<"$json"
}
# Prints "<deliveries> <user ticks> <system ticks>" of one load run.
cpu_run() {
    local before after deliveries
    before=$(awk '{print $14, $15}' "/proc/$GW_PID/stat")
    deliveries=$(load_run "$1" "$SUBSCRIBERS" "$RATE")
    after=$(awk '{print $14, $15}' "/proc/$GW_PID/stat")
    echo "$deliveries $before $after" | awk '{ print $1, $4 - $2, $5 - $3 }'
}
# Prints "<deliveries> <instructions>" of one load run under callgrind ($1: callgrind file prefix).
callgrind_run() {
    local seconds=$1 out=$2 deliveries
    callgrind_control -z "$GW_PID" >/dev/null 2>&1
    deliveries=$(load_run "$seconds" "$CG_SUBSCRIBERS" "$CG_RATE")
    callgrind_control -d "$GW_PID" >/dev/null 2>&1
    local file; file=$(ls -t "$out".* | head -1)
    echo "$deliveries $(awk '/^summary:/ {print $2}' "$file")"
}

n=0
hz=$(getconf CLK_TCK)
for binary in "${BINARIES[@]}"; do
    n=$((n + 1))
    GATEWAY=$binary
    start_gateway; GW_PID=$SERVER_PID
    load_run 1 "$SUBSCRIBERS" "$RATE" >/dev/null  # warm-up: first connections, lazily made state
    read -r short_d short_u short_s < <(cpu_run "$SHORT")
    if [ -n "${PERF_RECORD:-}" ]; then
        mkdir -p "$PERF_RECORD"
        perf record -e cpu-clock -F 999 -g -o "$PERF_RECORD/$n.data" -p "$GW_PID" 2>>"$WORK/perf.log" &
        record_pid=$!
    fi
    read -r long_d long_u long_s < <(cpu_run "$LONG")
    if [ -n "${PERF_RECORD:-}" ]; then kill -INT "$record_pid" 2>/dev/null || cat "$WORK/perf.log" >&2; wait "$record_pid" || true; fi
    awk -v b="$binary" -v n="$SUBSCRIBERS" -v r="$RATE" -v hz="$hz" -v d1="$short_d" -v d2="$long_d" \
        -v u1="$short_u" -v u2="$long_u" -v s1="$short_s" -v s2="$long_s" 'BEGIN {
        d = d2 - d1; if (d <= 0) { print b ": no more deliveries in the long run than in the short one"; exit }
        printf "%s: %d x %d msg/s: %.2f us CPU per delivery (user %.2f, system %.2f; %d and %d deliveries)\n",
            b, n, r, ((u2 - u1) + (s2 - s1)) / hz * 1e6 / d, (u2 - u1) / hz * 1e6 / d, (s2 - s1) / hz * 1e6 / d, d1, d2 }'
    if [ "${STRACE:-0}" = 1 ]; then
        strace -c -f -o "$WORK/strace.txt" -p "$GW_PID" 2>/dev/null &
        strace_pid=$!
        sleep 1
        deliveries=$(load_run "$LONG" "$SUBSCRIBERS" "$RATE")
        kill -INT "$strace_pid"; wait "$strace_pid" || true
        echo "  system calls under strace ($deliveries deliveries, connecting included):"
        awk -v d="$deliveries" '$NF ~ /^(write|writev|sendmsg|epoll_wait|read|readv|recvmsg)$/ {
            printf "    %-10s %9d calls, %.3f per delivery\n", $NF, $4, $4 / d }' "$WORK/strace.txt"
    fi
    stop_pid "$GW_PID"
    if [ "${CALLGRIND:-0}" = 1 ]; then
        [ -f "$WORK/shim.so" ] || gcc -shared -fPIC -O2 Benchmarks/compare/valgrind-sigsuspend-shim.c -o "$WORK/shim.so"
        # valgrind cannot read Swift 6's DWARF 5: a copy without debug sections (symbols stay).
        strip --strip-debug -o "$WORK/gateway-$n" "$binary"
        out="$WORK/callgrind-$n"
        NIO_SINGLETON_GROUP_LOOP_COUNT=1 LD_PRELOAD="$WORK/shim.so" valgrind --tool=callgrind --compress-strings=no --compress-pos=no \
            --callgrind-out-file="$out.%p" "$WORK/gateway-$n" run --config "$WORK/gateway.json" \
            2>>"$WORK/valgrind.log" &
        GW_PID=$!; PIDS+=("$GW_PID")
        for _ in $(seq 1 400); do
            [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GW_PORT/relay/fluxer-relay.js")" = 200 ] && break
            sleep 0.25
        done
        load_run 1 "$CG_SUBSCRIBERS" "$CG_RATE" >/dev/null
        read -r short_d short_i < <(callgrind_run "$SHORT" "$out")
        read -r long_d long_i < <(callgrind_run "$LONG" "$out")
        awk -v b="$binary" -v n="$CG_SUBSCRIBERS" -v r="$CG_RATE" -v d1="$short_d" -v d2="$long_d" \
            -v i1="$short_i" -v i2="$long_i" 'BEGIN {
            printf "%s: %d x %d msg/s under callgrind: %.0f instructions per delivery (%d and %d deliveries)\n",
                b, n, r, (i2 - i1) / (d2 - d1), d1, d2 }'
        if [ -n "${PROFILE_DIR:-}" ]; then mkdir -p "$PROFILE_DIR"; cp "$(ls -t "$out".* | head -1)" "$PROFILE_DIR/callgrind-$n.out"; fi
        stop_pid "$GW_PID"
    fi
done
