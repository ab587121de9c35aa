#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind: the gateway (one event loop)
# proxies to an nginx upstream on loopback; after a warm-up the counters are zeroed, a fixed
# number of requests is sent, and the counters are dumped. Instruction counts do not move with
# whatever else runs on the machine (the same binary gives the same count within about 0.5%),
# so this is the before/after measure for a change on a shared machine; the wall-clock scripts
# beside it give the side-by-side numbers on a quiet one.
#
# Usage: Benchmarks/compare/callgrind-per-request.sh [GATEWAY_BINARY...]
#   Without arguments, builds and measures this checkout's release binary; with several
#   binaries (before and after a change), measures each in turn.
#   REQUESTS=2000 WARMUP=500 MODES="keepalive close" by default. keepalive: h2load --h1, 4
#   connections; close: a new connection per request (`Connection: close`), one at a time.
#   PROFILE_DIR=dir keeps the callgrind files for `callgrind_annotate --inclusive=yes`.
#   EXTRA_CONFIG='"accessLog": { "output": "/tmp/access.log" }' adds top-level members to the
#   gateway's config (comma-separated JSON members, no braces).
#   ROUTE_FILTERS='"w"' runs the route through those filters (declared with EXTRA_CONFIG's
#   "filters"), e.g. a wasm guest: see BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
REQUESTS=${REQUESTS:-2000}
WARMUP=${WARMUP:-500}
MODES=${MODES:-keepalive close}

source Benchmarks/compare/common.sh
install_missing nginx:nginx-light h2load:nghttp2-client valgrind:valgrind gcc:gcc

BINARIES=("$@")
if [ ${#BINARIES[@]} -eq 0 ]; then
    build_gateway
    BINARIES=("$GATEWAY")
fi

wait_port() { # port [tries]: valgrind takes several seconds to start the gateway
    for _ in $(seq 1 "${2:-100}"); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.25; done
    echo "port $1 never answered" >&2; exit 1
}

source Benchmarks/compare/callgrind-common.sh
wait_gateway() { wait_port "$1" 400; }

UPSTREAM=$(free_port); GW=$(free_port)
write_nginx_upstream_config "$UPSTREAM" "$WORK/upstream.conf"
cat > "$WORK/gateway.json" <<CONF
{ "logLevel": "warning", ${EXTRA_CONFIG:+$EXTRA_CONFIG,} "listeners": [ { "name": "http", "address": "127.0.0.1", "port": $GW } ],
  "routes": [ { ${ROUTE_FILTERS:+\"filters\": [$ROUTE_FILTERS],} "backend": "app" } ],
  "backends": { "app": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "http://127.0.0.1:$UPSTREAM" } ] } } } }
CONF
nginx -c "$WORK/upstream.conf" & PIDS+=($!)
wait_port "$UPSTREAM"

load() { # mode count
    case "$1" in
    keepalive)
        h2load --h1 -n "$2" -c 4 "http://127.0.0.1:$GW/" | grep -q "$2 succeeded, 0 failed" || {
            echo "h2load: not every request succeeded" >&2; exit 1
        } ;;
    close) python3 Benchmarks/compare/close_client.py "$GW" "$2" ;;
    esac
}

callgrind_table
