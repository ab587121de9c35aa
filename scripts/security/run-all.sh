#!/usr/bin/env bash
# The long security checks of SECURITY.md in one run (the fast ones are in `swift test`):
#
#   scripts/security/run-all.sh BINARY [OUTDIR]
#
#   1. probe-compare.py  the raw HTTP/1.1 probe table against the gateway and nginx, side by side
#   2. h2-probes.py      the HTTP/2 probes (Python h2)
#   3. tls-scan.sh       testssl.sh and sslyze (Mozilla intermediate) on a chain from a local test CA
#   4. slowloris.py      1,500 slow connections, plain and TLS: a normal client's latency, RSS, fds
#   5. soak.sh           10 minutes of mixed proxy, JWT and relay traffic: RSS and fds flat
#
# Needs what each script needs: nginx, testssl.sh, wrk and nghttp2-client from Debian; h2, sslyze
# and matplotlib from PyPI. Every result lands in OUTDIR (default: a new temporary folder); the
# exit status is the number of checks that failed.
set -uo pipefail

BINARY=${1:?usage: run-all.sh BINARY [OUTDIR]}
BINARY=$(readlink -f "$BINARY")
OUT=${2:-$(mktemp -d /tmp/security-checks.XXXXXX)}
mkdir -p "$OUT"
HERE=$(cd "$(dirname "$0")" && pwd)
failed=0

run() {
    local name=$1
    shift
    echo "== $name: $*"
    if "$@" > "$OUT/$name.log" 2>&1; then
        echo "   ok ($OUT/$name.log)"
    else
        echo "   FAILED ($OUT/$name.log)"
        failed=$((failed + 1))
    fi
}

run probes python3 "$HERE/probe-compare.py" --binary "$BINARY" --out "$OUT/probes.md"
run h2-probes python3 "$HERE/h2-probes.py" --binary "$BINARY"
run tls-scan bash "$HERE/tls-scan.sh" "$BINARY" "$OUT/tls"
run slowloris python3 "$HERE/slowloris.py" --binary "$BINARY" --json "$OUT/slowloris-plain.json"
run slowloris-tls python3 "$HERE/slowloris.py" --binary "$BINARY" --tls --json "$OUT/slowloris-tls.json"
run soak bash "$HERE/soak.sh" "$BINARY" 600 "$OUT/soak"

echo "$failed check(s) failed; results in $OUT"
exit "$failed"
