#!/usr/bin/env bash
# TLS termination + JWT (RS256) comparison: h2load (HTTP/2) and wrk (HTTP/1.1) over HTTPS with a
# valid bearer token, Ethical Gateway (an issuer with an inline RSA key, routes with `auth`) vs
# HAProxy 2.6 (`jwt_verify` with alg, iss, aud and exp checks), each answering directly
# (gateway: `respond` backend; HAProxy: `http-request return`) and each proxying to one fast
# upstream (nginx answering a small fixed body). All on loopback, each side run in alternation
# ROUNDS times. Prints and writes a Markdown table.
#
# Usage: Benchmarks/compare/tls-jwt.sh [--smoke]
#   DURATION=10 CONNECTIONS=50 STREAMS=10 ROUNDS=3 by default; --smoke: 2 s, 1 round (CI: never
#   fails on numbers, but fails when a side does not start or does not check tokens).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-50}
STREAMS=${STREAMS:-10}
ROUNDS=${ROUNDS:-3}
SMOKE=
if [ "${1:-}" = "--smoke" ]; then SMOKE=1; DURATION=2; ROUNDS=1; fi

source Benchmarks/compare/common.sh
install_missing nginx:nginx-light wrk:wrk haproxy:haproxy h2load:nghttp2-client openssl:openssl curl:curl

build_gateway

wait_port() { # port scheme
    for _ in $(seq 1 100); do curl -sk -o /dev/null "$2://127.0.0.1:$1/" && return 0; sleep 0.1; done
    echo "port $1 never answered" >&2; exit 1
}
source Benchmarks/compare/tls-jwt-material.sh
TOKEN=$(mint 3600)
EXPIRED=$(mint -60)
FORGED="${TOKEN%.*}.$(printf 'not the signature' | b64url)"

UPSTREAM=$(free_port); HAPROXY=$(free_port); GW=$(free_port)
write_nginx_upstream_config "$UPSTREAM" "$WORK/upstream.conf"
cat > "$WORK/haproxy.cfg" <<CONF
global
  nbthread 2
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend web
  bind 127.0.0.1:$HAPROXY ssl crt $WORK/server.pem alpn h2,http/1.1
  http-request set-var(txn.bearer) http_auth_bearer
  http-request deny deny_status 401 unless { var(txn.bearer) -m found }
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
  http-request deny deny_status 401 unless { var(txn.alg) -m str RS256 }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('\$.iss') -m str https://issuer.bench }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('\$.aud') -m str api }
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
  http-request set-var(txn.now) date
  http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"$WORK/jwt.pub") -m int 1 }
  http-request return status 200 content-type text/plain string "ok" unless { path_beg /proxy }
  default_backend app
backend app
  http-reuse always
  server s1 127.0.0.1:$UPSTREAM
CONF
write_tls_jwt_gateway_config "$GW" "$UPSTREAM"

nginx -c "$WORK/upstream.conf" & PIDS+=($!)
haproxy -f "$WORK/haproxy.cfg" -q & PIDS+=($!)
"$GATEWAY" run --config "$WORK/gateway.json" 2>"$WORK/gateway.log" & PIDS+=($!)
wait_port "$UPSTREAM" http
for port in $HAPROXY $GW; do wait_port "$port" https; done

# Both sides must really check tokens: a valid one passes, a missing, expired or forged one does not.
status() { curl -sk -o /dev/null -w '%{http_code}' ${2:+-H "Authorization: Bearer $2"} "https://127.0.0.1:$1"; }
for side in gateway:$GW haproxy:$HAPROXY; do
    for path in /direct /proxy; do
        port=${side##*:}
        got="$(status "$port$path" "$TOKEN") $(status "$port$path") $(status "$port$path" "$EXPIRED") $(status "$port$path" "$FORGED")"
        if [ "$got" != "200 401 401 401" ]; then
            echo "${side%%:*} $path: expected 200 401 401 401 (valid, none, expired, forged), got $got" >&2
            cat "$WORK/gateway.log" >&2
            exit 1
        fi
    done
done

# wrk and h2load print times in us/ms/s; normalise to milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.2f", n }'; }
run_wrk() { # key url
    local out rps p50 p99 errors
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "$2" 2>&1)
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
    p99=$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
    errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
    echo "$1 ${rps:-0} $p50 $p99 ${errors:-none}" >> "$WORK/results"
}
run_h2load() { # key url
    local out rps mean failures
    out=$(h2load -t2 -c"$CONNECTIONS" -m"$STREAMS" -D"$DURATION" -H "authorization: Bearer $TOKEN" "$2" 2>&1)
    rps=$(awk '/^finished in/ {print $4}' <<<"$out")
    mean=$(to_ms "$(awk '/^time for request:/ {print $6}' <<<"$out")")
    failures=$(awk '/^requests:/ {f=$10+$12+$14} /^status codes:/ {n=$5+$7+$9} END { if (f+n) printf "failed/errored/timeout %d, non-2xx %d", f, n }' <<<"$out")
    echo "$1 ${rps:-0} $mean - ${failures:-none}" >> "$WORK/results"
}

SIDES="gateway:$GW haproxy:$HAPROXY"
MODES="direct proxy"
: > "$WORK/results"
for tool in h2load wrk; do
    for mode in $MODES; do
        for _ in $(seq 1 "$ROUNDS"); do
            for side in $SIDES; do
                "run_$tool" "$tool/$mode/${side%%:*}" "https://127.0.0.1:${side##*:}/$mode"
            done
        done
    done
done

median() { sort -n | awk '{a[NR]=$1} END { if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
column() { awk -v k="$1" -v c="$2" '$1==k {print $c}' "$WORK/results"; }
OUT="$ROOT/Benchmarks/results/tls-jwt-$(date -u +%Y-%m-%d)${SMOKE:+-smoke}.md"
mkdir -p "$ROOT/Benchmarks/results"
{
    echo "# TLS termination + JWT (RS256): Ethical Gateway vs HAProxy"
    echo
    echo "Command: \`Benchmarks/compare/tls-jwt.sh${1:+ $1}\` (h2load -t2 -c$CONNECTIONS -m$STREAMS -D$DURATION over HTTP/2; wrk -t2 -c$CONNECTIONS -d${DURATION}s over HTTP/1.1; TLS with an RSA-2048 certificate; one valid RS256 token on every request; $ROUNDS rounds in alternation, medians; spread = min..max req/s)"
    echo
    echo "Machine: $(nproc) cores, $(uname -sr), $(haproxy -v | head -1 | awk '{print $1, $3}') ($(openssl version | awk '{print $1, $2}')), $(h2load --version 2>&1 | head -1), $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}'), upstream $(nginx -v 2>&1 | sed 's/.*: //'), gateway $("$GATEWAY" version | awk '{print $2}') at $(git rev-parse --short HEAD 2>/dev/null || echo "?") (release build), date $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "| tool | mode | side | req/s (median) | spread | p50 ms (wrk) / mean ms (h2load) | p99 ms | ratio vs HAProxy | errors |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for tool in h2load wrk; do
        for mode in $MODES; do
            haproxy_rps=$(column "$tool/$mode/haproxy" 2 | median)
            for side in gateway haproxy; do
                key="$tool/$mode/$side"
                rps=$(column "$key" 2 | median)
                spread="$(column "$key" 2 | sort -n | head -1)..$(column "$key" 2 | sort -n | tail -1)"
                latency=$(column "$key" 3 | median)
                p99=$(column "$key" 4 | awk '$1!="-"' | median)
                errors=$(awk -v k="$key" '$1==k {e=""; for (i=5;i<=NF;i++) e=e $i " "; if (e!="none ") printf "%s", e}' "$WORK/results" | head -c 80)
                ratio=$(awk -v a="$rps" -v b="$haproxy_rps" 'BEGIN { if (b>0) printf "%.2f", a/b; else print "-" }')
                echo "| $tool | $mode | $side | $rps | $spread | $latency | $p99 | $ratio | ${errors:-none} |"
            done
        done
    done
} | tee "$OUT"
