#!/usr/bin/env bash
# Relay fan-out across two gateway nodes sharing channels through Redis, beside one node with the
# memory engine: N WebSocket subscribers on one channel and one publisher at a fixed rate, driven
# by the same load generator as relay-fanout.sh (Benchmarks/RelayLoad), all on loopback.
#
# Setups, run in alternation ROUNDS times:
#   memory      one gateway, memory engine, publisher and subscribers on it (relay-fanout.sh's run)
#   redis-cross two gateways with the Redis engine: subscribers on node B, the publisher on node A,
#               so every publication goes A -> publish script in Redis -> SPUBLISH -> B -> subscribers
#   redis-same  publisher and subscribers both on node B (the Redis round trip without a second node)
# Prints and writes a Markdown table with delivered messages/s, p50/p99 publish->deliver latency,
# delivery ratio, and the CPU of each gateway process and of redis-server.
#
# Usage: Benchmarks/compare/relay-fanout-redis.sh [--smoke]
#   DURATION=10 ROUNDS=3 SUBSCRIBERS="1000" RATES="100 1000" SETUPS="memory redis-cross redis-same"
#   by default. HISTORY_SIZE=0 (the bench namespace keeps no history, as in relay-fanout.sh);
#   HISTORY_SIZE=100 makes every publish also bump the channel's offset and append to its stream,
#   and node B check the offsets (a gap unsubscribes the subscribers with code 2500).
#   GATEWAY_BINARY=path measures another build. Gateway logs (level info) are kept in LOG_DIR
#   (default /tmp/relay-fanout-redis-logs).
#   --smoke: 2 s, 1 round, 100 subscribers at 100 msg/s (CI: never fails on numbers).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
SUBSCRIBERS=${SUBSCRIBERS:-"1000"}
RATES=${RATES:-"100 1000"}
SETUPS=${SETUPS:-"memory redis-cross redis-same"}
HISTORY_SIZE=${HISTORY_SIZE:-0}
LOG_DIR=${LOG_DIR:-/tmp/relay-fanout-redis-logs}
if [ "${1:-}" = "--smoke" ]; then DURATION=2; ROUNDS=1; SUBSCRIBERS="100"; RATES="100"; SMOKE=1; fi

command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
RELAY_NEEDS_NATS=0
. Benchmarks/compare/relay-common.sh
save_logs() {
    mkdir -p "$LOG_DIR"
    cp "$WORK"/*.log "$WORK"/raw.jsonl "$LOG_DIR"/ 2>/dev/null || true
}
trap 'save_logs; relay_cleanup' EXIT

REDIS_PORT=$(free_port); MEM_PORT=$(free_port); A_PORT=$(free_port); B_PORT=$(free_port)
url() { echo "ws://127.0.0.1:$1/relay/connection/websocket"; }

# The same relay settings as relay-fanout.sh (relay-common.sh's gateway.json), at log level info
# so the Redis engine's gap messages are kept, plus the engine for the two Redis nodes.
gateway_config() { # file port engine-json
    mkdir -p "$WORK/state-$2"
    cat > "$1" <<CONF
{ "logLevel": "info", "stateDirectory": "$WORK/state-$2",
  "listeners": [ { "name": "ws", "address": "127.0.0.1", "port": $2 } ],
  "routes": [ { "name": "relay", "match": { "pathPrefix": "/relay" }, "stripPrefix": true, "backend": "relay" } ],
  "backends": { "relay": { "plugin": "fluxer-relay", "config": {
    "allowAnonymous": true, "commandsPerSecond": 1000000, "commandBurst": 1000000, "maxQueuedBytes": 4194304,
    "engine": $3,
    "namespaces": { "default": {}, "bench": { "subscribe": "any", "publish": "any", "historySize": $HISTORY_SIZE } } } } } }
CONF
}
REDIS_ENGINE="{ \"type\": \"redis\", \"addresses\": [\"redis://127.0.0.1:$REDIS_PORT\"], \"prefix\": \"fluxer\" }"
gateway_config "$WORK/memory.json" "$MEM_PORT" '{ "type": "memory" }'
gateway_config "$WORK/node-a.json" "$A_PORT" "$REDIS_ENGINE"
gateway_config "$WORK/node-b.json" "$B_PORT" "$REDIS_ENGINE"

# Redis: loopback only, no persistence (no RDB snapshots, no AOF), defaults otherwise (one
# command thread; io-threads 1).
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no --protected-mode yes \
    --logfile "$WORK/redis.log" --dir "$WORK" &
REDIS_PID=$!; PIDS+=("$REDIS_PID")
for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done

start_node() { # name port -> SERVER_PID
    NIO_SINGLETON_GROUP_LOOP_COUNT=2 "$GATEWAY" run --config "$WORK/$1.json" 2>>"$WORK/gateway-$1.log" &
    SERVER_PID=$!; PIDS+=("$SERVER_PID")
    wait_http "http://127.0.0.1:$2/relay/health"
}
start_node memory "$MEM_PORT"; MEM_PID=$SERVER_PID
start_node node-a "$A_PORT"; A_PID=$SERVER_PID
start_node node-b "$B_PORT"; B_PID=$SERVER_PID

# A process that died (a crash) reads as "-": the run is recorded with a note and the next ones go on.
alive() { [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
ticks() { alive "$1" && cpu_ticks "$1" 2>/dev/null || echo "-"; }
exited() { # pid name: notes a process that is gone, with its exit status, once
    alive "$1" && return 0
    grep -q "(pid $1)" "$WORK/exits" && return 0
    local status=0; wait "$1" 2>/dev/null || status=$?
    echo "$2 (pid $1) exited with status $status" >> "$WORK/exits"
}
pct() { # ticks-before ticks-after wall-seconds -> % of one core
    if [ "$1" = - ] || [ "$2" = - ]; then echo "-"; return; fi
    awk -v d=$(($2 - $1)) -v hz="$(getconf CLK_TCK)" -v w="$3" 'BEGIN { printf "%.0f", d / hz / w * 100 }'
}

run_load() { # setup subscribers rate
    local sub_url pub_url pids=() ports=()
    case "$1" in
        memory) sub_url=$(url "$MEM_PORT"); pub_url=$sub_url; pids=("$MEM_PID"); ports=("$MEM_PORT") ;;
        redis-cross) sub_url=$(url "$B_PORT"); pub_url=$(url "$A_PORT"); pids=("$A_PID" "$B_PID" "$REDIS_PID"); ports=("$A_PORT" "$B_PORT") ;;
        redis-same) sub_url=$(url "$B_PORT"); pub_url=$sub_url; pids=("$A_PID" "$B_PID" "$REDIS_PID"); ports=("$B_PORT") ;;
    esac
    local before=() after=() pid json
    for pid in "${pids[@]}"; do before+=("$(ticks "$pid")"); done
    local start; start=$(date +%s.%N)
    json=$("$LOAD" --protocol relay --url "$sub_url" --publish-url "$pub_url" \
        --subscribers "$2" --rate "$3" --duration "$DURATION" 2>>"$WORK/load.log") || json=""
    for pid in "${pids[@]}"; do after+=("$(ticks "$pid")"); done
    local wall; wall=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { print e - s }')
    local port; for port in "${ports[@]}"; do wait_no_connections "$port"; done
    exited "$MEM_PID" memory; exited "$A_PID" node-a; exited "$B_PID" node-b; exited "$REDIS_PID" redis-server
    if [ -z "$json" ]; then echo "$2 $3 $1 0 0 0 0 - - - - failed" >> "$WORK/results"; return; fi
    echo "$json" | jq -c --arg setup "$1" '. + {setup: $setup}' >> "$WORK/raw.jsonl"
    # CPU over the whole run (connect, publish, drain), in % of one core: node A (or the memory
    # node), node B, redis-server.
    local cpu_a cpu_b="-" cpu_r="-"
    cpu_a=$(pct "${before[0]}" "${after[0]}" "$wall")
    if [ "${#pids[@]}" -eq 3 ]; then
        cpu_b=$(pct "${before[1]}" "${after[1]}" "$wall")
        cpu_r=$(pct "${before[2]}" "${after[2]}" "$wall")
    fi
    jq -r --arg setup "$1" --arg a "$cpu_a" --arg b "$cpu_b" --arg r "$cpu_r" \
        '"\(.subscribers) \(.rate|floor) \($setup) \(.delivered_per_s) \(.p50_ms) \(.p99_ms) \(.delivery_ratio) \($a) \($b) \($r) \(.loadgen_cpu_pct) failed=\(.failed),unsub=\(.unsubscribed),closed=\(.closed),out_of_order=\(.out_of_order),skipped=\(.skipped)"' \
        <<<"$json" >> "$WORK/results"
}

LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
: > "$WORK/results"; : > "$WORK/exits"
for n in $SUBSCRIBERS; do
  for rate in $RATES; do
    for round in $(seq 1 "$ROUNDS"); do
      for setup in $SETUPS; do run_load "$setup" "$n" "$rate"; done
    done
  done
done
LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)
redis_info=$(timeout 5 redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' | grep -E 'cmdstat_(evalsha|eval|spublish|publish|ssubscribe|sunsubscribe):' || true)

OUT="$ROOT/Benchmarks/results/relay-fanout-redis-$(date -u +%Y-%m-%d)${SMOKE:+-smoke}.md"
mkdir -p "$ROOT/Benchmarks/results"
col() { awk -v n="$1" -v r="$2" -v s="$3" -v c="$4" '$1==n && $2==r && $3==s {print $c}' "$WORK/results"; }
{
  echo "# Relay fan-out across two gateway nodes with Redis, beside one node with the memory engine"
  echo
  echo "Command: \`${GATEWAY_BINARY:+GATEWAY_BINARY=<release build> }DURATION=$DURATION ROUNDS=$ROUNDS SUBSCRIBERS=\"$SUBSCRIBERS\" RATES=\"$RATES\" HISTORY_SIZE=$HISTORY_SIZE Benchmarks/compare/relay-fanout-redis.sh${1:+ $1}\` ($DURATION s of publishing per run, $ROUNDS rounds in alternation, medians; spread = min..max delivered msgs/s; payload 128 bytes; Benchmarks/RelayLoad with 2 event loops; each gateway with 2 event loops)"
  echo
  machine_facts
  echo "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), no persistence; load average (1 min) $LOAD_BEFORE before the runs, $LOAD_AFTER after"
  echo
  echo "Setups: memory = one gateway, memory engine; redis-cross = subscribers on node B, publisher on node A (A -> Redis -> B); redis-same = publisher and subscribers on node B (through Redis, one node). CPU columns: % of one core over the whole run (connect, publish, drain); A = the memory node in the memory rows."
  echo
  echo "| subscribers | publish msg/s | setup | delivered msgs/s (median) | spread | delivered % | p50 ms | p99 ms | node A CPU % | node B CPU % | redis CPU % | loadgen CPU % | ratio vs memory | notes |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for n in $SUBSCRIBERS; do
    for rate in $RATES; do
      mem_rate=$(col "$n" "$rate" memory 4 | median)
      for setup in $SETUPS; do
        rps=$(col "$n" "$rate" "$setup" 4 | median)
        low=$(col "$n" "$rate" "$setup" 4 | sort -n | head -1)
        high=$(col "$n" "$rate" "$setup" 4 | sort -n | tail -1)
        ratio=$(awk -v a="$rps" -v b="$mem_rate" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
        pct=$(col "$n" "$rate" "$setup" 7 | median | awk '{ if ($1 == "-") print "-"; else printf "%.1f", $1 * 100 }')
        notes=$(col "$n" "$rate" "$setup" 12 | sort -u | grep -v '^failed=0,unsub=0,closed=0,out_of_order=0,skipped=0$' | tr '\n' ' ' || true)
        echo "| $n | $rate | $setup | $rps | $low..$high | $pct | $(col "$n" "$rate" "$setup" 5 | median) | $(col "$n" "$rate" "$setup" 6 | median) | $(col "$n" "$rate" "$setup" 8 | median) | $(col "$n" "$rate" "$setup" 9 | median) | $(col "$n" "$rate" "$setup" 10 | median) | $(col "$n" "$rate" "$setup" 11 | median) | $ratio | ${notes:-} |"
      done
    done
  done
  if [ -s "$WORK/exits" ]; then
    echo
    echo "**Processes that exited during the runs** (a crash: 139 = SIGSEGV):"
    echo
    sort -u "$WORK/exits" | sed 's/^/- /'
  fi
  echo
  echo "Redis command counts over the whole run (\`INFO commandstats\`):"
  echo
  echo '```'
  echo "${redis_info:-none}"
  echo '```'
  echo
  echo "Gateway log lines at warning or above, and the Redis engine's gap messages (info), per node (logs kept in $LOG_DIR):"
  echo
  for node in memory node-a node-b; do
    lines=$(grep -ciE 'warning|error|critical|gap in a channel' "$WORK/gateway-$node.log" || true)
    echo "- $node: ${lines:-0}"
    grep -iE 'warning|error|critical|gap in a channel' "$WORK/gateway-$node.log" | sed 's/^/    /' | sort | uniq -c | sort -rn | head -5 || true
  done
} | tee "$OUT"
