#!/usr/bin/env bash
# Instructions per TLS + JWT request, counted by valgrind's callgrind: the gateway (one event
# loop) terminates TLS and checks an RS256 bearer token (the same config and openssl-made
# material as tls-jwt.sh), then answers directly (`/direct`, the `respond` backend) or proxies to
# an nginx upstream (`/proxy`). h2load sends the same valid token on every request over 4
# connections, HTTP/1.1 or HTTP/2 (10 streams each); connections are made anew for the warm-up
# and for the measured run, so the measured count includes 4 TLS handshakes (RSA-2048), spread
# over REQUESTS. As callgrind-per-request.sh, this is the before/after measure on a shared
# machine; tls-jwt.sh gives the side-by-side numbers against HAProxy on a quiet one.
#
# Usage: Benchmarks/compare/callgrind-tls-jwt.sh [GATEWAY_BINARY...]
#   REQUESTS=4000 WARMUP=500 MODES="h1-direct h1-proxy h2-direct h2-proxy" by default;
#   PROFILE_DIR=dir keeps the callgrind files for `callgrind_annotate --inclusive=yes`.
set -euo pipefail
cd "$(dirname "$0")/../.."
REQUESTS=${REQUESTS:-4000}
WARMUP=${WARMUP:-500}
MODES=${MODES:-h1-direct h1-proxy h2-direct h2-proxy}

source Benchmarks/compare/common.sh
install_missing nginx:nginx-light h2load:nghttp2-client valgrind:valgrind gcc:gcc openssl:openssl curl:curl

BINARIES=("$@")
if [ ${#BINARIES[@]} -eq 0 ]; then
    build_gateway
    BINARIES=("$GATEWAY")
fi

wait_port() { # port scheme [tries]
    for _ in $(seq 1 "${3:-100}"); do curl -sk -o /dev/null "$2://127.0.0.1:$1/" && return 0; sleep 0.25; done
    echo "port $1 never answered" >&2; exit 1
}

source Benchmarks/compare/callgrind-common.sh
source Benchmarks/compare/tls-jwt-material.sh
wait_gateway() { wait_port "$1" https 400; }
TOKEN=$(mint 3600)

UPSTREAM=$(free_port); GW=$(free_port)
write_nginx_upstream_config "$UPSTREAM" "$WORK/upstream.conf"
write_tls_jwt_gateway_config "$GW" "$UPSTREAM"
nginx -c "$WORK/upstream.conf" & PIDS+=($!)
wait_port "$UPSTREAM" http

load() { # mode count: h1-direct, h1-proxy, h2-direct or h2-proxy
    local protocol=() path=/${1#*-}
    if [ "${1%%-*}" = h1 ]; then protocol=(--h1); else protocol=(-m 10); fi
    local out
    out=$(h2load "${protocol[@]}" -n "$2" -c 4 -H "authorization: Bearer $TOKEN" "https://127.0.0.1:$GW$path")
    # h2load counts a 401 as a success: every answer must be the route's 2xx.
    grep -q "$2 succeeded, 0 failed, 0 errored, 0 timeout" <<<"$out" && grep -q "status codes: $2 2xx" <<<"$out" || {
        echo "h2load $1: not every request was answered 2xx" >&2; echo "$out" >&2; exit 1
    }
}

callgrind_table
