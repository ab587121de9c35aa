#!/usr/bin/env bash
# CPU time per proxied request: Ethical Gateway vs nginx, each proxying to the same nginx
# upstream on loopback under the same wrk load. CPU seconds (user + system, from /proc) divided
# by requests served is far less sensitive to other work on the machine than requests/second,
# so it is the number to compare before and after a change.
#
# Usage: Benchmarks/compare/cpu-per-request.sh [GATEWAY_BINARY...]
#   Without arguments, builds and measures the release binary of this checkout. With several
#   binaries (e.g. a copy built before a change and one after), measures each in alternation.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
command -v nginx >/dev/null && command -v wrk >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk >/dev/null
}
BINARIES=("$@")
if [ ${#BINARIES[@]} -eq 0 ]; then
    swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product ethical-gateway >/dev/null
    BINARIES=("$(swift build -c release -Xswiftc -enforce-exclusivity=unchecked --show-bin-path)/ethical-gateway")
fi
WORK=$(mktemp -d /tmp/gateway-cpu.XXXXXX)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; exit 1; }
cpu_ticks() { local total=0; for pid in "$@"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done; echo "$total"; }
measure() { # label port pid...
    local before after output requests
    before=$(cpu_ticks "${@:3}")
    output=$(wrk -t2 -c50 -d"${DURATION}s" "http://127.0.0.1:$2/")
    after=$(cpu_ticks "${@:3}")
    requests=$(awk '/requests in/ {print $1}' <<<"$output")
    awk -v label="$1" -v d=$((after - before)) -v n="$requests" -v hz="$(getconf CLK_TCK)" \
        -v rps="$(awk '/Requests\/sec/ {print $2}' <<<"$output")" \
        'BEGIN { printf "| %s | %.1f | %s |\n", label, d / hz * 1e6 / n, rps }'
}

UPSTREAM=$(free_port); NGINX=$(free_port); GW=$(free_port)
cat > "$WORK/upstream.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/upstream.pid; error_log /dev/null;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:$UPSTREAM; location / { return 200 "hello from upstream\n"; } } }
CONF
cat > "$WORK/proxy.conf" <<CONF
worker_processes 2; daemon off; pid $WORK/proxy.pid; error_log /dev/null;
events { worker_connections 4096; }
http { access_log off; upstream app { server 127.0.0.1:$UPSTREAM; keepalive 64; }
  server { listen 127.0.0.1:$NGINX; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
cat > "$WORK/gateway.json" <<CONF
{ "logLevel": "warning", "listeners": [ { "name": "http", "address": "127.0.0.1", "port": $GW } ],
  "routes": [ { "backend": "app" } ],
  "backends": { "app": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "http://127.0.0.1:$UPSTREAM" } ] } } } }
CONF
nginx -c "$WORK/upstream.conf" & PIDS+=($!)
wait_port "$UPSTREAM"
echo "| side | CPU us per request | req/s |"
echo "|---|---|---|"
for _ in $(seq 1 "$ROUNDS"); do
    nginx -c "$WORK/proxy.conf" & master=$!
    wait_port "$NGINX"
    measure nginx "$NGINX" $(pgrep -P "$master")
    kill "$master"; wait "$master" 2>/dev/null || true
    for binary in "${BINARIES[@]}"; do
        "$binary" run --config "$WORK/gateway.json" 2>/dev/null & gateway=$!
        wait_port "$GW"
        measure "gateway $(basename "$(dirname "$binary")")/$(basename "$binary")" "$GW" "$gateway"
        kill "$gateway"; wait "$gateway" 2>/dev/null || true
    done
done
