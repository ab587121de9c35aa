#!/usr/bin/env bash
# Soak: mixed proxy / JWT / relay traffic at ~70% of measured capacity for a fixed duration,
# sampling the gateway's RSS, open fds and threads every 5 s (issue 11, "Prove the rest").
#
#   scripts/security/soak.sh GATEWAY_BINARY [DURATION_SECONDS=600] [OUTPUT_DIR=./soak-<time>]
#
# Needs: wrk, h2load (Debian nghttp2-client), nginx, python3 with `websockets` (and `matplotlib`
# for the PNG). Everything listens on 127.0.0.1 on free ports; every process started here is
# stopped by its PID at the end. Exit status: 0 pass, 1 a threshold was crossed, 2 set-up failed.
#
# Knobs (environment):
#   MIX=proxy,jwt,relay   traffic kinds (any subset; used to find which kind leaks)
#   WARMUP=60 INTERVAL=5  warm-up seconds excluded from the growth checks; sampling period
#   LOAD_FRACTION=0.7     share of the measured capacity offered during the soak
#   TARGET_RPS=           fixed HTTP rate instead of measuring capacity
#   CAPACITY_SECONDS=10 CAPACITY_CONNECTIONS=32
#   H2LOAD_RPS_PER_CLIENT=10   per-connection rate (h2load --rps); clients = rate / this
#   WS_CLIENTS=200 WS_CHANNELS=4 PUB_RATE=50 CHURN_INTERVAL=30 CHURN_COUNT=10
#   RSS_MAX_GROWTH_KB=8192 RSS_MAX_GROWTH_PCT=10 FD_SLACK=16 MAX_ERROR_PCT=0.1
#   KEEP_TMP=1            keep the temp folder (configs, logs)
set -uo pipefail

usage() { sed -n 2,22p "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
case "$1" in -h|--help) usage ;; esac
BIN=$(readlink -f "$1")
DURATION=${2:-600}
OUT=${3:-./soak-$(date +%Y%m%d-%H%M%S)}
HERE=$(cd "$(dirname "$0")" && pwd)
HELPER="$HERE/soak.py"
MIX=${MIX:-proxy,jwt,relay}
WARMUP=${WARMUP:-60}
INTERVAL=${INTERVAL:-5}
LOAD_FRACTION=${LOAD_FRACTION:-0.7}
CAPACITY_SECONDS=${CAPACITY_SECONDS:-10}
CAPACITY_CONNECTIONS=${CAPACITY_CONNECTIONS:-32}
H2LOAD_RPS_PER_CLIENT=${H2LOAD_RPS_PER_CLIENT:-10}
WS_CLIENTS=${WS_CLIENTS:-200}
WS_CHANNELS=${WS_CHANNELS:-4}
PUB_RATE=${PUB_RATE:-50}
CHURN_INTERVAL=${CHURN_INTERVAL:-30}
CHURN_COUNT=${CHURN_COUNT:-10}

has() { case ",$MIX," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
log() { printf '[soak %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 2; }

[ -x "$BIN" ] || die "gateway binary not executable: $BIN"
[[ "$DURATION" =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 30 ] || die "duration must be an integer >= 30"
for t in nginx python3 curl; do command -v $t >/dev/null || die "$t not found"; done
if has proxy || has jwt; then
    for t in wrk h2load; do command -v $t >/dev/null || die "$t not found (apt-get install wrk nghttp2-client)"; done
fi
has relay && { python3 -c 'import websockets' 2>/dev/null || die "python3 module websockets missing"; }
python3 -c 'import matplotlib' 2>/dev/null || log "warning: matplotlib missing (pip install matplotlib): no PNG"

mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(readlink -f "$OUT")
TMP=$(mktemp -d /tmp/gateway-soak.XXXXXX)
chmod 755 "$TMP"  # nginx workers (user nobody when started as root) read the static file
PIDS=()  # every process we start, stopped by PID on exit

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    done
    if [ "${KEEP_TMP:-0}" = 1 ]; then log "temp folder kept: $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 2' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {  # URL, seconds
    local i
    for i in $(seq 1 $(( $2 * 5 ))); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1")" = 200 ] && return 0
        sleep 0.2
    done
    return 1
}

# ---------------------------------------------------------------- upstream: nginx, static file
NGINX_PORT=$(free_port)
mkdir -p "$TMP/nginx/html/static" "$TMP/nginx/logs" "$TMP/nginx/tmp"
printf 'soak upstream: a small static response\n' > "$TMP/nginx/html/static/index.html"
cat > "$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/tmp/body;
    proxy_temp_path $TMP/nginx/tmp/proxy;
    fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
    uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
    scgi_temp_path $TMP/nginx/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    default_type text/plain;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $TMP/nginx/html;
        location / { try_files \$uri =404; }
    }
}
EOF
nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' >"$TMP/nginx/logs/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_http "http://127.0.0.1:$NGINX_PORT/static/index.html" 10 || die "nginx did not start (see $TMP/nginx/logs)"
log "nginx pid $NGINX_PID on 127.0.0.1:$NGINX_PORT ($(nginx -v 2>&1))"

# ---------------------------------------------------------------- gateway config
GW_PORT=$(free_port)
mkdir -p "$TMP/gw"
CONF="$TMP/gw/gateway.json"
cat > "$CONF" <<EOF
{
  "stateDirectory": "state",
  "logLevel": "notice",
  "listeners": [ { "name": "http", "address": "127.0.0.1", "port": $GW_PORT } ],
  "issuers": {
    "dev": { "issuer": "https://soak.invalid/dev", "audiences": ["soak"], "development": true }
  },
  "routes": [
    { "name": "health", "match": { "path": "/healthz", "methods": ["GET", "HEAD"] }, "backend": "ok" },
    { "name": "jwt", "match": { "pathPrefix": "/api/" }, "backend": "ok",
      "auth": { "issuers": ["dev"], "scopes": ["soak"] } },
    { "name": "relay", "match": { "pathPrefix": "/relay" }, "stripPrefix": true, "backend": "relay",
      "auth": { "issuers": ["dev"], "anonymous": true } },
    { "name": "proxy", "match": { "pathPrefix": "/" }, "backend": "upstream" }
  ],
  "backends": {
    "ok": { "plugin": "respond", "config": { "status": 200, "body": "ok\n" } },
    "upstream": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "http://127.0.0.1:$NGINX_PORT" } ] } },
    "relay": {
      "plugin": "fluxer-relay",
      "config": {
        "issuers": ["dev"],
        "namespaces": {
          "default": { "subscribe": "authenticated", "publish": "none" },
          "soak": { "subscribe": "authenticated", "publish": "none", "historySize": 100, "historyTTLSeconds": 120 }
        }
      }
    }
  }
}
EOF
"$BIN" validate "$CONF" >&2 || die "generated config does not validate"
TTL=$(( DURATION + 3600 ))
HTTP_TOKEN=$("$BIN" dev-token --config "$CONF" --sub soak --scope soak --ttl "$TTL") || die "dev-token failed"
WS_TOKEN=$("$BIN" dev-token --config "$CONF" --sub soak-ws --ttl "$TTL") || die "dev-token failed"
API_TOKEN=$("$BIN" dev-token --config "$CONF" --sub soak-publisher --scope relay:admin --ttl "$TTL") || die "dev-token failed"

"$BIN" run --config "$CONF" >"$OUT/gateway.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
wait_http "http://127.0.0.1:$GW_PORT/healthz" 30 || die "gateway did not start (see $OUT/gateway.log)"
log "gateway pid $GW_PID on 127.0.0.1:$GW_PORT"

BASE="http://127.0.0.1:$GW_PORT"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/static/index.html")" = 200 ] || die "proxy route does not answer 200"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $HTTP_TOKEN" "$BASE/api/soak")" = 200 ] \
    || die "JWT route does not answer 200 with the token"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/api/soak")" = 401 ] || die "JWT route without a token is not 401"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $API_TOKEN" \
    -d '{"channel":"soak:probe","data":{}}' "$BASE/relay/api/publish")" = 200 ] || die "relay publish API is not 200"

COMMIT=${COMMIT:-$(git -C "$(dirname "$BIN")" rev-parse --short HEAD 2>/dev/null || echo unknown)}
KINDS=()
has proxy && KINDS+=(proxy)
has jwt && KINDS+=(jwt)

# ---------------------------------------------------------------- relay traffic (runs through capacity + soak)
# The relay clients start first, so the capacity wrk measures is what is left for HTTP beside the
# relay traffic, and "70% of capacity" is 70% of what this mix can really take.
rm -f "$OUT"/h2load-*.log "$OUT"/h2load-*.txt "$OUT/relay-stats.jsonl" "$OUT/relay-result.json"
RELAY_PID=""
if has relay; then
    log "relay: $WS_CLIENTS WebSocket clients on $WS_CHANNELS channels, publishing $PUB_RATE/s, churn $CHURN_COUNT every ${CHURN_INTERVAL}s"
    python3 "$HELPER" relay --ws-url "ws://127.0.0.1:$GW_PORT/relay/connection/websocket" \
        --api-port "$GW_PORT" --ws-token "$WS_TOKEN" --api-token "$API_TOKEN" \
        --clients "$WS_CLIENTS" --channels "$WS_CHANNELS" --pub-rate "$PUB_RATE" \
        --churn-interval "$CHURN_INTERVAL" --churn-count "$CHURN_COUNT" \
        --duration "$(( DURATION + CAPACITY_SECONDS + 120 ))" \
        --stats "$OUT/relay-stats.jsonl" --result "$OUT/relay-result.json" >>"$OUT/helper.log" 2>&1 &
    RELAY_PID=$!
    PIDS+=("$RELAY_PID")
    for _ in $(seq 1 60); do  # until every client is connected (bounded: 30 s)
        sleep 0.5
        n=$(tail -n1 "$OUT/relay-stats.jsonl" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["connected"])' 2>/dev/null)
        [ "${n:-0}" -ge "$WS_CLIENTS" ] && break
    done
    log "relay: ${n:-0}/$WS_CLIENTS clients connected"
fi

# ---------------------------------------------------------------- capacity (wrk, closed loop)
CAPACITY=""
TARGET=${TARGET_RPS:-}
if [ ${#KINDS[@]} -gt 0 ]; then
    cat > "$TMP/mixed.lua" <<'EOF'
-- alternate the selected paths; the JWT path carries the bearer token
local kinds = {}
for k in string.gmatch(os.getenv("SOAK_KINDS") or "proxy,jwt", "[^,]+") do kinds[#kinds + 1] = k end
local token = os.getenv("SOAK_TOKEN")
local i = 0
request = function()
  i = i + 1
  local k = kinds[(i % #kinds) + 1]
  if k == "jwt" then
    return wrk.format("GET", "/api/soak", { ["Authorization"] = "Bearer " .. token })
  end
  return wrk.format("GET", "/static/index.html")
end
EOF
    if [ -z "$TARGET" ]; then
        log "capacity: wrk ${CAPACITY_SECONDS}s, $CAPACITY_CONNECTIONS connections, kinds ${KINDS[*]}"
        SOAK_KINDS=$(IFS=,; echo "${KINDS[*]}") SOAK_TOKEN="$HTTP_TOKEN" \
            timeout $(( CAPACITY_SECONDS + 30 )) wrk -t1 -c"$CAPACITY_CONNECTIONS" -d"${CAPACITY_SECONDS}s" \
            --latency -s "$TMP/mixed.lua" "$BASE" >"$OUT/capacity-wrk.txt" 2>&1
        CAPACITY=$(awk '/^Requests\/sec:/ {print $2}' "$OUT/capacity-wrk.txt")
        [ -n "$CAPACITY" ] || die "wrk gave no result (see $OUT/capacity-wrk.txt)"
        grep -q 'Non-2xx' "$OUT/capacity-wrk.txt" && log "warning: $(grep 'Non-2xx' "$OUT/capacity-wrk.txt")"
        TARGET=$(python3 -c "print(int(float('$CAPACITY') * $LOAD_FRACTION))")
        log "capacity $CAPACITY req/s -> target $TARGET req/s"
        sleep 5  # let the wrk connections close before the soak starts
    fi
fi

# ---------------------------------------------------------------- soak
START=$(date +%s)
python3 "$HELPER" sample --pid "$GW_PID" --interval "$INTERVAL" --duration "$(( DURATION + 5 ))" \
    --out "$OUT/samples-raw.csv" 2>>"$OUT/helper.log" &
SAMPLER_PID=$!
PIDS+=("$SAMPLER_PID")
WAIT_PIDS=()

if [ ${#KINDS[@]} -gt 0 ]; then
    PER_KIND=$(( TARGET / ${#KINDS[@]} ))
    CLIENTS=$(( (PER_KIND + H2LOAD_RPS_PER_CLIENT - 1) / H2LOAD_RPS_PER_CLIENT ))
    [ "$CLIENTS" -ge 2 ] || CLIENTS=2
    RPS=$(python3 -c "print(round($PER_KIND / $CLIENTS, 2))")
    for k in "${KINDS[@]}"; do
        if [ "$k" = jwt ]; then
            URL="$BASE/api/soak"; HDR=(-H "Authorization: Bearer $HTTP_TOKEN")
        else
            URL="$BASE/static/index.html"; HDR=()
        fi
        log "h2load $k: $CLIENTS connections x $RPS req/s for ${DURATION}s"
        h2load --h1 -t1 -c"$CLIENTS" -m1 --rps="$RPS" -D"$DURATION" "${HDR[@]}" \
            --log-file="$OUT/h2load-$k.log" "$URL" >"$OUT/h2load-$k.txt" 2>&1 &
        PIDS+=("$!"); WAIT_PIDS+=("$!")
    done
fi

# bounded wait: h2load stops itself after DURATION; the relay helper is told to stop at START+DURATION
DEADLINE=$(( START + DURATION + 60 ))
for p in "${WAIT_PIDS[@]}"; do
    while kill -0 "$p" 2>/dev/null && [ "$(date +%s)" -lt "$DEADLINE" ]; do sleep 1; done
    kill -0 "$p" 2>/dev/null && { log "warning: h2load $p overran; stopping it"; kill -TERM "$p"; }
    wait "$p" 2>/dev/null
done
if [ -n "$RELAY_PID" ]; then
    while [ "$(date +%s)" -lt $(( START + DURATION )) ] && kill -0 "$RELAY_PID" 2>/dev/null; do sleep 1; done
    kill -TERM "$RELAY_PID" 2>/dev/null  # stop publishing, drain 3 s, close, write the result
    for _ in $(seq 1 150); do kill -0 "$RELAY_PID" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$RELAY_PID" 2>/dev/null && { log "warning: relay helper did not stop; killing it"; kill -KILL "$RELAY_PID"; }
    wait "$RELAY_PID" 2>/dev/null
fi
# one last sample after the load has stopped is not wanted in the curves: stop the sampler now
kill -TERM "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null
GW_ALIVE=1; kill -0 "$GW_PID" 2>/dev/null || GW_ALIVE=0
kill -TERM "$GW_PID" 2>/dev/null
for _ in $(seq 1 100); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.2; done
kill -TERM "$NGINX_PID" 2>/dev/null

cat > "$OUT/meta.json" <<EOF
{ "binary": "$BIN", "commit": "$COMMIT", "mix": "$MIX", "duration": $DURATION, "interval": $INTERVAL,
  "capacity_rps": ${CAPACITY:-null}, "capacity_seconds": $CAPACITY_SECONDS, "target_rps": ${TARGET:-null},
  "load_fraction": $LOAD_FRACTION, "h2load_kinds": [$(printf '"%s",' "${KINDS[@]}" | sed 's/,$//')],
  "gateway_alive_at_end": $GW_ALIVE, "started": $START }
EOF
cp "$CONF" "$OUT/gateway.json"
[ "$GW_ALIVE" = 1 ] || log "error: the gateway died during the soak (see $OUT/gateway.log)"

python3 "$HELPER" report --out "$OUT" --warmup "$WARMUP" \
    --rss-max-growth-kb "${RSS_MAX_GROWTH_KB:-8192}" --rss-max-growth-pct "${RSS_MAX_GROWTH_PCT:-10}" \
    --fd-slack "${FD_SLACK:-16}" --max-error-pct "${MAX_ERROR_PCT:-0.1}"
RC=$?
[ "$GW_ALIVE" = 1 ] || RC=1
log "output: $OUT (soak.csv, soak.png, summary.md); exit $RC"
exit $RC
