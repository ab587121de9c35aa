#!/usr/bin/env bash
# Runs the Autobahn|Testsuite fuzzing client (wstest -m fuzzingclient, autobahntestsuite 0.8.2 on
# Python 2.7) against a `websocket-echo` route of the gateway, and summarises the report with
# scripts/autobahn_summary.py (exit 1 when any case is not OK, NON-STRICT or INFORMATIONAL).
#
# Usage: scripts/autobahn.sh [--url ws://HOST:PORT/PATH] [--cases '1.*,2.*'] [--exclude '9.*'] [--out DIR]
#   Without --url: builds the gateway (CONFIGURATION=release by default, debug with
#   CONFIGURATION=debug; GATEWAY_BINARY=path uses that binary instead), starts it on a free loopback port with a websocket-echo route
#   (maxMessageBytes 16 MiB for the 9.* cases), runs the cases, stops it by its PID.
#   --cases: comma-separated case patterns, default all ('*'). The report (HTML and JSON) goes
#   to --out, default .build/autobahn/.
#   Installs autobahntestsuite for Python 2.7 when wstest is missing (PYTHON2 names the
#   interpreter; by default python2.7 on PATH or pyenv's 2.7). --install-only: just that (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
URL=""
CASES="*"
EXCLUDE=""
OUT="$ROOT/.build/autobahn"
INSTALL_ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --url) URL=$2; shift 2 ;;
        --cases) CASES=$2; shift 2 ;;
        --exclude) EXCLUDE=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --install-only) INSTALL_ONLY=1; shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

find_python2() {
    if [ -n "${PYTHON2:-}" ]; then echo "$PYTHON2"; return; fi
    if python2.7 -c 'pass' >/dev/null 2>&1; then command -v python2.7; return; fi
    local root="${PYENV_ROOT:-$HOME/.pyenv}"
    if command -v pyenv >/dev/null 2>&1; then root=$(pyenv root); fi
    for candidate in "$root"/versions/2.7*/bin/python2.7; do
        if [ -x "$candidate" ]; then echo "$candidate"; return; fi
    done
    echo "no Python 2.7 found (set PYTHON2)" >&2; exit 1
}
PY2=$(find_python2)
WSTEST="$(dirname "$PY2")/wstest"
if [ ! -x "$WSTEST" ]; then
    "$PY2" -m pip install --quiet autobahntestsuite==0.8.2
fi
if [ -n "$INSTALL_ONLY" ]; then exit 0; fi

GATEWAY_PID=""
WORK=$(mktemp -d)
cleanup() {
    if [ -n "$GATEWAY_PID" ]; then kill "$GATEWAY_PID" 2>/dev/null || true; wait "$GATEWAY_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "$URL" ]; then
    if [ -n "${GATEWAY_BINARY:-}" ]; then
        BIN=$GATEWAY_BINARY
    else
        CONFIGURATION=${CONFIGURATION:-release}
        FLAGS=()
        # The same build as the Dockerfile's and the benchmarks'.
        if [ "$CONFIGURATION" = release ]; then FLAGS=(-Xswiftc -enforce-exclusivity=unchecked); fi
        nice -n 10 swift build -c "$CONFIGURATION" "${FLAGS[@]}" --product ethical-gateway >&2
        BIN="$(swift build -c "$CONFIGURATION" "${FLAGS[@]}" --show-bin-path)/ethical-gateway"
    fi
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat > "$WORK/gateway.json" <<JSON
{ "listeners": [ { "name": "http", "address": "127.0.0.1", "port": $PORT } ],
  "stateDirectory": "$WORK/state",
  "routes": [ { "name": "echo", "match": { "pathPrefix": "/" }, "backend": "echo" } ],
  "backends": { "echo": { "plugin": "websocket-echo", "config": { "maxMessageBytes": 16777216 } } } }
JSON
    "$BIN" run --config "$WORK/gateway.json" --log-level warning > "$WORK/gateway.log" 2>&1 &
    GATEWAY_PID=$!
    for _ in $(seq 1 200); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null; then break; fi
        kill -0 "$GATEWAY_PID" 2>/dev/null || { cat "$WORK/gateway.log" >&2; exit 1; }
        sleep 0.1
    done
    URL="ws://127.0.0.1:$PORT/echo"
fi

python3 - "$WORK/spec.json" "$URL" "$CASES" "$EXCLUDE" "$OUT" <<'PY'
import json, sys
spec_file, url, cases, exclude, out = sys.argv[1:]
json.dump({
    "outdir": out,
    "servers": [{"agent": "ethical-gateway", "url": url}],
    "cases": [c for c in cases.split(",") if c],
    "exclude-cases": [c for c in exclude.split(",") if c],
    "exclude-agent-cases": {},
}, open(spec_file, "w"))
PY
mkdir -p "$OUT"
(cd "$WORK" && "$WSTEST" -m fuzzingclient -s "$WORK/spec.json" > "$WORK/wstest.log" 2>&1) || {
    tail -40 "$WORK/wstest.log" >&2; exit 1
}
python3 scripts/autobahn_summary.py "$OUT"
