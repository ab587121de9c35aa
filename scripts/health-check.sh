#!/usr/bin/env bash
# Polls the gateway's public health endpoint until it answers 2xx and, when EXPECTED_VERSION is
# set, reports that version; fails once a deadline passes. Used by scripts/deploy.sh and so by
# the deploy job in .github/workflows/pipeline.yml; runnable by hand.
#
# Usage: scripts/health-check.sh [--url URL] [--expect-version V] [--deadline S] [--interval S]
#                                [--check-config] [--help]
#
# The contract, i.e. what counts as "the new version answers":
#   1. GET HEALTH_URL answers with a 2xx status (redirects are not followed: a 308 is not healthy);
#   2. if EXPECTED_VERSION is set, it appears as a whole token in the header VERSION_HEADER
#      (default X-Gateway-Version) or in the body; VERSION_SOURCE narrows this to header or body.
#      A token is a run of letters, digits and . _ + - (so "1.2" does not match "1.20").
#      Matching answers for EXPECTED_VERSION=3f2c1ab9d0e1: a header "X-Gateway-Version: 3f2c1ab9d0e1",
#      a body "ok 3f2c1ab9d0e1" or "ok\nversion: 3f2c1ab9d0e1\n". The gateway's respond backend can
#      send either; docs/deployment.md shows a /healthz route that does it with a Swarm template;
#   3. HEALTH_SUCCESSES such answers in a row (default 3): behind Swarm's ingress the requests are
#      spread over the replicas, and during a rolling update old and new ones answer side by side.
#
# Environment (options win over variables):
#   HEALTH_URL              URL to poll; default https://$PUBLIC_HOST/healthz
#   PUBLIC_HOST             public host name of the gateway, used when HEALTH_URL is not set
#   EXPECTED_VERSION        version the answers must report; empty: any 2xx answer is healthy
#   VERSION_HEADER          header that carries the version (default X-Gateway-Version)
#   VERSION_SOURCE          where the version may appear: any, header or body (default any)
#   HEALTH_DEADLINE         seconds to keep trying (default 300)
#   HEALTH_INTERVAL         seconds between attempts (default 5)
#   HEALTH_REQUEST_TIMEOUT  seconds one request may take (default 10)
#   HEALTH_SUCCESSES        good answers needed in a row (default 3)
#   HEALTH_INSECURE         1: do not verify the TLS certificate (a development certificate)
#   HEALTH_CACERT           PEM file with the CA certificate(s) to trust for HEALTH_URL
#   HEALTH_RESOLVE          HOST:PORT:ADDRESS, to ask one node before DNS points at it, e.g.
#                           gateway.example.com:443:10.0.0.5 (curl's --resolve)
#
# --check-config only checks the variables and prints what would be polled (deploy.sh runs it
# before calling the webhook, so a missing variable fails before anything is deployed).
#
# Exit status: 0 healthy; 1 not healthy when the deadline passed (the last answer is printed);
#              2 usage error: a missing or malformed variable or option.

set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
usage_error() {
    echo "health-check: error: $*" >&2
    echo "Run $0 --help for the variables and options." >&2
    exit 2
}

check_only=0
while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --check-config) check_only=1; shift ;;
        --url | --expect-version | --deadline | --interval)
            [ $# -ge 2 ] || usage_error "$1 needs a value"
            case "$1" in
                --url) HEALTH_URL=$2 ;;
                --expect-version) EXPECTED_VERSION=$2 ;;
                --deadline) HEALTH_DEADLINE=$2 ;;
                --interval) HEALTH_INTERVAL=$2 ;;
            esac
            shift 2
            ;;
        *) usage_error "unknown argument: $1" ;;
    esac
done

if [ -z "${HEALTH_URL:-}" ]; then
    if [ -z "${PUBLIC_HOST:-}" ]; then
        usage_error "HEALTH_URL is not set, and neither is PUBLIC_HOST (the public host name to poll as https://PUBLIC_HOST/healthz)"
    fi
    HEALTH_URL="https://${PUBLIC_HOST}/healthz"
fi
case "$HEALTH_URL" in
    http://* | https://*) ;;
    *) usage_error "HEALTH_URL must start with http:// or https://, found: $HEALTH_URL" ;;
esac
EXPECTED_VERSION=${EXPECTED_VERSION:-}
VERSION_HEADER=${VERSION_HEADER:-X-Gateway-Version}
VERSION_SOURCE=${VERSION_SOURCE:-any}
HEALTH_DEADLINE=${HEALTH_DEADLINE:-300}
HEALTH_INTERVAL=${HEALTH_INTERVAL:-5}
HEALTH_REQUEST_TIMEOUT=${HEALTH_REQUEST_TIMEOUT:-10}
HEALTH_SUCCESSES=${HEALTH_SUCCESSES:-3}
HEALTH_INSECURE=${HEALTH_INSECURE:-0}
HEALTH_CACERT=${HEALTH_CACERT:-}
HEALTH_RESOLVE=${HEALTH_RESOLVE:-}

for name in HEALTH_DEADLINE HEALTH_INTERVAL HEALTH_REQUEST_TIMEOUT; do
    [[ ${!name} =~ ^[0-9]+([.][0-9]+)?$ ]] || usage_error "$name must be a number of seconds, found: '${!name}'"
done
[[ $HEALTH_SUCCESSES =~ ^[1-9][0-9]*$ ]] || usage_error "HEALTH_SUCCESSES must be a whole number of at least 1, found: '$HEALTH_SUCCESSES'"
case "$VERSION_SOURCE" in any | header | body) ;; *) usage_error "VERSION_SOURCE must be any, header or body, found: '$VERSION_SOURCE'" ;; esac
case "$HEALTH_INSECURE" in 0 | 1 | true | false | "") ;; *) usage_error "HEALTH_INSECURE must be 1 or 0, found: '$HEALTH_INSECURE'" ;; esac
[[ $VERSION_HEADER =~ ^[A-Za-z0-9!#$%\&\'*+.^_\`|~-]+$ ]] || usage_error "VERSION_HEADER is not a header name: '$VERSION_HEADER'"
if [ -n "$HEALTH_CACERT" ] && [ ! -r "$HEALTH_CACERT" ]; then
    usage_error "HEALTH_CACERT names a file that cannot be read: $HEALTH_CACERT"
fi
if [ -n "$HEALTH_RESOLVE" ] && ! [[ $HEALTH_RESOLVE =~ ^[^:]+:[0-9]+:.+$ ]]; then
    usage_error "HEALTH_RESOLVE must be HOST:PORT:ADDRESS, found: '$HEALTH_RESOLVE'"
fi
command -v curl >/dev/null 2>&1 || usage_error "curl is not installed (it makes the requests)"

want="a 2xx answer"
[ -n "$EXPECTED_VERSION" ] && want="a 2xx answer reporting version $EXPECTED_VERSION"
if [ "$check_only" = 1 ]; then
    echo "health-check: would poll $HEALTH_URL for $want (${HEALTH_SUCCESSES} in a row, every ${HEALTH_INTERVAL}s, for up to ${HEALTH_DEADLINE}s)"
    exit 0
fi

# Milliseconds, from bash's clock when it has one (bash 5), else whole seconds from date.
now_ms() {
    if [ -n "${EPOCHREALTIME:-}" ]; then
        local t=${EPOCHREALTIME//[.,]/}
        echo $((10#$t / 1000))
    else
        echo $(($(date +%s) * 1000))
    fi
}
to_ms() { LC_ALL=C awk -v s="$1" 'BEGIN { printf "%d", s * 1000 }'; }
ms_to_s() { LC_ALL=C awk -v ms="$1" 'BEGIN { printf "%.3f", ms / 1000 }'; }
# Succeeds when file $1 contains $2 as a whole token. (No grep -q: with pipefail, an early exit
# could fail the pipeline through tr's SIGPIPE.)
has_token() { LC_ALL=C tr -c 'A-Za-z0-9._+-' '\n' <"$1" | grep -xF -- "$2" >/dev/null; }
snippet() { LC_ALL=C tr -s '\r\n\t' '   ' <"$1" | cut -c 1-200 | sed 's/ *$//'; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/health-check.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

curl_args=(--silent --show-error --user-agent "ethical-gateway-health-check"
    --output "$scratch/body" --dump-header "$scratch/headers" --write-out '%{http_code}')
case "$HEALTH_INSECURE" in 1 | true) curl_args+=(--insecure) ;; esac
[ -n "$HEALTH_CACERT" ] && curl_args+=(--cacert "$HEALTH_CACERT")
[ -n "$HEALTH_RESOLVE" ] && curl_args+=(--resolve "$HEALTH_RESOLVE")

start=$(now_ms)
deadline=$((start + $(to_ms "$HEALTH_DEADLINE")))
interval_ms=$(to_ms "$HEALTH_INTERVAL")
request_ms=$(to_ms "$HEALTH_REQUEST_TIMEOUT")
attempts=0
in_a_row=0
last="no answer yet"
# The last answer that had an HTTP status: an attempt cut short by the deadline must not hide it.
last_answered=""

echo "health-check: polling $HEALTH_URL for $want (${HEALTH_SUCCESSES} in a row, up to ${HEALTH_DEADLINE}s)"
while :; do
    now=$(now_ms)
    remaining=$((deadline - now))
    [ "$remaining" -gt 0 ] || break
    attempts=$((attempts + 1))
    max_ms=$((remaining < request_ms ? remaining : request_ms))
    : >"$scratch/body"
    : >"$scratch/headers"
    status=$(curl "${curl_args[@]}" --max-time "$(ms_to_s "$max_ms")" "$HEALTH_URL" 2>"$scratch/error") || true
    status=${status:-000}

    if [ "$status" = 000 ]; then
        last="no answer: $(snippet "$scratch/error")"
        in_a_row=0
    else
        awk -v name="$VERSION_HEADER" 'BEGIN { name = tolower(name) }
            { line = $0; sub(/\r$/, "", line); i = index(line, ":") }
            i > 0 && tolower(substr(line, 1, i - 1)) == name { v = substr(line, i + 1); sub(/^[ \t]+/, "", v); print v }' \
            "$scratch/headers" >"$scratch/version-header"
        header_text=$(snippet "$scratch/version-header")
        last="HTTP $status; ${VERSION_HEADER}: ${header_text:-(none)}; body: $(snippet "$scratch/body")"
        last_answered=$last
        good=0
        if [[ $status =~ ^2[0-9][0-9]$ ]]; then
            if [ -z "$EXPECTED_VERSION" ]; then
                good=1
            elif [ "$VERSION_SOURCE" != body ] && has_token "$scratch/version-header" "$EXPECTED_VERSION"; then
                good=1
            elif [ "$VERSION_SOURCE" != header ] && has_token "$scratch/body" "$EXPECTED_VERSION"; then
                good=1
            fi
        fi
        if [ "$good" = 1 ]; then in_a_row=$((in_a_row + 1)); else in_a_row=0; fi
    fi
    echo "health-check: attempt $attempts: $last [good in a row: $in_a_row/$HEALTH_SUCCESSES]"

    if [ "$in_a_row" -ge "$HEALTH_SUCCESSES" ]; then
        elapsed=$(ms_to_s $(($(now_ms) - start)))
        echo "health-check: healthy: $HEALTH_URL gave $want $HEALTH_SUCCESSES times in a row (after $attempts attempts, ${elapsed}s)"
        exit 0
    fi

    now=$(now_ms)
    remaining=$((deadline - now))
    [ "$remaining" -gt 0 ] || break
    sleep "$(ms_to_s $((remaining < interval_ms ? remaining : interval_ms)))"
done

{
    echo "health-check: error: $HEALTH_URL did not turn healthy within ${HEALTH_DEADLINE}s: wanted $want ${HEALTH_SUCCESSES} times in a row, got $in_a_row after $attempts attempts."
    if [ -n "$last_answered" ] && [ "$last_answered" != "$last" ]; then
        echo "health-check: last answer: $last_answered"
        echo "health-check: last attempt: $last"
    else
        echo "health-check: last answer: $last"
    fi
} >&2
exit 1
