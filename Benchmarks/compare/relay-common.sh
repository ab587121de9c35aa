# Shared by relay-fanout.sh and idle-websocket.sh (sourced, not run): installs nats-server,
# builds the gateway and the load generator in release mode, and starts and stops the two
# servers on loopback with equal resources (2 event loops / GOMAXPROCS=2). Every process is
# started from this shell and stopped by PID; the caller's EXIT trap runs relay_cleanup.

need=()
# RELAY_NEEDS_NATS=0: the caller runs no nats-server (relay-fanout-redis.sh).
if [ "${RELAY_NEEDS_NATS:-1}" = 1 ]; then command -v nats-server >/dev/null || need+=(nats-server); fi
command -v curl >/dev/null || need+=(curl)
command -v jq >/dev/null || need+=(jq)
command -v ss >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; fi

# 10,000 WebSockets on each end need descriptors; children inherit the limit.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# GATEWAY_BINARY=path measures another build (e.g. before and after a change) instead of this checkout's.
if [ -n "${GATEWAY_BINARY:-}" ]; then
    GATEWAY="$GATEWAY_BINARY"
else
    swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product ethical-gateway >/dev/null
    GATEWAY="$(swift build -c release -Xswiftc -enforce-exclusivity=unchecked --show-bin-path)/ethical-gateway"
fi
swift build -c release --package-path Benchmarks/RelayLoad >/dev/null
LOAD="$(swift build -c release --package-path Benchmarks/RelayLoad --show-bin-path)/relay-load"

WORK=$(mktemp -d /tmp/relay-bench.XXXXXX)
PIDS=()
relay_cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}

# Listening ports come from below the kernel's ephemeral range (32768 up): with 10,000 client
# sockets open, a port picked from that range can be taken as some client's local port, and a
# restarted server then cannot listen on it again.
free_port() {
    python3 -c '
import random, socket
for _ in range(200):
    port = random.randrange(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port)); print(port); break
    except OSError:
        pass
    finally:
        s.close()'
}
wait_http() { # url: until it answers 200, at most 20 s
    for _ in $(seq 1 200); do [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0; sleep 0.1; done
    echo "$1 never answered" >&2
    exit 1
}
wait_no_connections() { # port: until nothing is connected to it, at most 30 s
    for _ in $(seq 1 300); do [ "$(ss -Htn state established "( sport = :$1 )" | wc -l)" -eq 0 ] && return 0; sleep 0.1; done
    echo "connections to port $1 still open after 30 s" >&2
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
stop_pid() { # pid: SIGTERM, then wait for it
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local kept=() other
    for other in "${PIDS[@]}"; do [ "$other" != "$1" ] && kept+=("$other"); done
    PIDS=("${kept[@]}")
}

GW_PORT=$(free_port); NATS_PORT=$(free_port); NATS_WS_PORT=$(free_port); NATS_MON_PORT=$(free_port)
GW_URL="ws://127.0.0.1:$GW_PORT/relay/connection/websocket"
NATS_URL="ws://127.0.0.1:$NATS_WS_PORT/"

# The relay: anonymous connections; the bench namespace lets anyone subscribe and publish and
# keeps no history (like NATS core). The publisher sends up to 1,000 commands/s, so the command
# rate limit is raised; maxQueuedBytes is 4 MiB (default 1 MiB) so a burst at 10,000
# subscribers is queued rather than dropped (nats-server's max_pending is 64 MiB by default).
mkdir -p "$WORK/state"
cat > "$WORK/gateway.json" <<CONF
{ "logLevel": "warning", "stateDirectory": "$WORK/state",
  "listeners": [ { "name": "ws", "address": "127.0.0.1", "port": $GW_PORT } ],
  "routes": [ { "name": "relay", "match": { "pathPrefix": "/relay" }, "stripPrefix": true, "backend": "relay" } ],
  "backends": { "relay": { "plugin": "fluxer-relay", "config": {
    "allowAnonymous": true, "commandsPerSecond": 1000000, "commandBurst": 1000000, "maxQueuedBytes": 4194304,
    "namespaces": { "default": {}, "bench": { "subscribe": "any", "publish": "any", "historySize": 0 } } } } } }
CONF
cat > "$WORK/nats.conf" <<CONF
listen: "127.0.0.1:$NATS_PORT"
http: "127.0.0.1:$NATS_MON_PORT"
max_connections: 100000
websocket { listen: "127.0.0.1:$NATS_WS_PORT", no_tls: true }
CONF

# Each sets SERVER_PID and SERVER_PORT (the port clients connect to).
start_gateway() {
    NIO_SINGLETON_GROUP_LOOP_COUNT=2 "$GATEWAY" run --config "$WORK/gateway.json" 2>>"$WORK/gateway.log" &
    SERVER_PID=$!; PIDS+=("$SERVER_PID"); SERVER_PORT=$GW_PORT
    wait_http "http://127.0.0.1:$GW_PORT/relay/fluxer-relay.js"
}
start_nats() {
    GOMAXPROCS=2 nats-server -c "$WORK/nats.conf" 2>>"$WORK/nats.log" &
    SERVER_PID=$!; PIDS+=("$SERVER_PID"); SERVER_PORT=$NATS_WS_PORT
    wait_http "http://127.0.0.1:$NATS_MON_PORT/healthz"
}

machine_facts() {
    echo "Machine: $(nproc) cores, $(uname -sr), $(swift --version 2>/dev/null | head -1 | sed 's/ (.*//'), $(command -v nats-server >/dev/null && echo "nats-server $(nats-server --version | awk '{print $NF}'), ")gateway $("$GATEWAY" version | awk '{print $2}') at $(git rev-parse --short HEAD 2>/dev/null || echo unknown) (release build), date $(date -u +%Y-%m-%dT%H:%MZ)"
}
median() { sort -n | awk '{a[NR]=$1} END { if (NR == 0) print "-"; else if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
