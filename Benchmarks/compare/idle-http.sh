#!/usr/bin/env bash
# Memory per idle HTTP keep-alive connection: Ethical Gateway vs nginx vs HAProxy, each answering
# a small fixed body itself. For each side and round: start it fresh, read its RSS (all of its
# processes), open N connections with one request each (Benchmarks/compare/idle_client.py) and
# keep them idle, read the RSS again, stop everything. KiB per connection = (after - before) / N.
# nginx and HAProxy allocate their connection tables at start (worker_connections, maxconn), so
# part of their cost is already in "before"; the last column, RSS after / N, bounds it from above.
# Sides run in alternation ROUNDS times. Prints and writes a Markdown table.
#
# Usage: Benchmarks/compare/idle-http.sh [--smoke]
#   CONNECTIONS=9000 ROUNDS=3 by default (9,000 fits the 20,000 open-file hard limit of these
#   machines with HAProxy's two descriptors per connection); --smoke: 500 connections, 1 round (CI: never fails on
#   numbers, but fails when a side does not start or does not hold the connections).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CONNECTIONS=${CONNECTIONS:-9000}
ROUNDS=${ROUNDS:-3}
SMOKE=
if [ "${1:-}" = "--smoke" ]; then SMOKE=1; CONNECTIONS=500; ROUNDS=1; fi

source Benchmarks/compare/common.sh
install_missing nginx:nginx-light haproxy:haproxy curl:curl ps:procps

# Every side and the client hold one descriptor per connection; HAProxy refuses to start unless
# it may open two per connection it accepts (maxconn), so the limit must be twice the count.
limit=$((CONNECTIONS + 500))
ulimit -n $((limit * 2 + 100)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((limit * 2 + 100)) ]; then
    echo "open-file limit $(ulimit -n) is below $((limit * 2 + 100)) (HAProxy needs two descriptors per connection); raise the hard limit or lower CONNECTIONS" >&2
    exit 1
fi

build_gateway

wait_port() { for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; echo "port $1 never answered" >&2; exit 1; }
# RSS in KiB of a process and its children (nginx's master and workers).
tree_rss() { ps -o rss= -p "$1" --ppid "$1" | awk '{s+=$1} END {print s+0}'; }

start_side() { # side port -> starts it and sets SIDE_PID
    case $1 in
        gateway)
            cat > "$WORK/gateway.json" <<CONF
{ "logLevel": "warning", "limits": { "idleTimeoutSeconds": 600 },
  "listeners": [ { "name": "http", "address": "127.0.0.1", "port": $2 } ],
  "routes": [ { "backend": "ok" } ],
  "backends": { "ok": { "plugin": "respond", "config": { "status": 200, "body": "hello from upstream\n" } } } }
CONF
            "$GATEWAY" run --config "$WORK/gateway.json" 2>>"$WORK/gateway.log" & ;;
        nginx)
            cat > "$WORK/nginx.conf" <<CONF
worker_processes 2; worker_rlimit_nofile $limit; daemon off; pid $WORK/nginx.pid; error_log /dev/null;
events { worker_connections $limit; }
http { access_log off; keepalive_timeout 600s; keepalive_requests 100000;
  server { listen 127.0.0.1:$2 backlog=4096; location / { return 200 "hello from upstream\n"; } } }
CONF
            nginx -c "$WORK/nginx.conf" & ;;
        haproxy)
            cat > "$WORK/haproxy.cfg" <<CONF
global
  nbthread 2
  maxconn $limit
defaults
  mode http
  maxconn $limit
  timeout connect 5s
  timeout client 600s
  timeout http-keep-alive 600s
  option http-keep-alive
frontend web
  bind 127.0.0.1:$2
  http-request return status 200 content-type text/plain string "hello from upstream\n"
CONF
            haproxy -f "$WORK/haproxy.cfg" -q & ;;
    esac
    SIDE_PID=$!
    PIDS+=("$SIDE_PID")
    wait_port "$2"
}

stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

measure() { # side
    local port before after client ready
    port=$(free_port)
    start_side "$1" "$port"
    before=$(tree_rss "$SIDE_PID")
    python3 "$ROOT/Benchmarks/compare/idle_client.py" "$port" "$CONNECTIONS" > "$WORK/client.out" 2>&1 &
    client=$!
    PIDS+=("$client")
    # Bounded: 10 minutes at most for the client to open and use every connection.
    ready=""
    for _ in $(seq 1 6000); do
        ready=$(awk '/^(ready|failed)/' "$WORK/client.out")
        [ -n "$ready" ] && break
        kill -0 "$client" 2>/dev/null || break
        sleep 0.1
    done
    if [[ "$ready" != "ready $CONNECTIONS" ]]; then
        echo "$1: the client could not hold $CONNECTIONS connections: $(cat "$WORK/client.out")" >&2
        exit 1
    fi
    after=$(tree_rss "$SIDE_PID")
    stop_pid "$client"
    stop_pid "$SIDE_PID"
    echo "$1 $before $after $(awk -v a="$after" -v b="$before" -v n="$CONNECTIONS" 'BEGIN { printf "%.2f", (a-b)/n }')" >> "$WORK/results"
}

: > "$WORK/results"
for _ in $(seq 1 "$ROUNDS"); do
    for side in gateway nginx haproxy; do measure "$side"; done
done

median() { sort -n | awk '{a[NR]=$1} END { if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
column() { awk -v k="$1" -v c="$2" '$1==k {print $c}' "$WORK/results"; }
OUT="$ROOT/Benchmarks/results/idle-http-$(date -u +%Y-%m-%d)${SMOKE:+-smoke}.md"
mkdir -p "$ROOT/Benchmarks/results"
{
    echo "# Memory per idle HTTP keep-alive connection: Ethical Gateway vs nginx vs HAProxy"
    echo
    echo "Command: \`Benchmarks/compare/idle-http.sh${1:+ $1}\` ($CONNECTIONS connections, one request each, then idle; RSS of all the side's processes before and after; each side started fresh, $ROUNDS rounds in alternation, medians; spread = min..max KiB/connection)"
    echo
    echo "Machine: $(nproc) cores, $(uname -sr), $(nginx -v 2>&1 | sed 's/.*: //') (2 workers), $(haproxy -v | head -1 | awk '{print $1, $3}') (nbthread 2), gateway $("$GATEWAY" version | awk '{print $2}') at $(git rev-parse --short HEAD 2>/dev/null || echo "?") (release build, 2 event loops), $(python3 --version), date $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "| side | RSS before MiB | RSS after MiB | KiB per connection (median) | spread | ratio vs nginx | RSS after / N, KiB |"
    echo "|---|---|---|---|---|---|---|"
    nginx_kib=$(column nginx 4 | median)
    for side in gateway nginx haproxy; do
        before=$(column "$side" 2 | median | awk '{printf "%.1f", $1/1024}')
        after=$(column "$side" 3 | median | awk '{printf "%.1f", $1/1024}')
        kib=$(column "$side" 4 | median)
        spread="$(column "$side" 4 | sort -n | head -1)..$(column "$side" 4 | sort -n | tail -1)"
        ratio=$(awk -v a="$kib" -v b="$nginx_kib" 'BEGIN { if (b>0) printf "%.2f", a/b; else print "-" }')
        total=$(column "$side" 3 | median | awk -v n="$CONNECTIONS" '{printf "%.2f", $1/n}')
        echo "| $side | $before | $after | $kib | $spread | $ratio | $total |"
    done
} | tee "$OUT"
