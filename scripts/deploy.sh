#!/usr/bin/env bash
# Redeploys the gateway's Swarm stack through Portainer's stack webhook, then waits until the
# public health endpoint answers with the new version (scripts/health-check.sh). Used by the
# deploy job in .github/workflows/pipeline.yml; runnable by hand:
#
#   PORTAINER_WEBHOOK_URL=https://portainer.example.com:9443/api/stacks/webhooks/<token> \
#   PUBLIC_HOST=gateway.example.com DEPLOY_VERSION=3f2c1ab9d0e1 \
#   WEBHOOK_VARIABLES="GATEWAY_TAG=3f2c1ab9d0e1 GATEWAY_VERSION=3f2c1ab9d0e1" scripts/deploy.sh
#
# Usage: scripts/deploy.sh [--version V] [--no-health-check] [--help]
#
# Environment (options win over variables):
#   PORTAINER_WEBHOOK_URL  required: the stack's webhook URL (Portainer: Stacks > the stack >
#                          Webhook). It holds the webhook's token: keep it in a secret. This
#                          script prints only its scheme and host.
#   DEPLOY_VERSION         the version being deployed; health-check.sh waits for answers that
#                          report it (as EXPECTED_VERSION). Empty: any healthy answer will do.
#   WEBHOOK_VARIABLES      space-separated NAME=VALUE pairs, sent URL-encoded as query parameters
#                          of the webhook, which Portainer applies to the stack's environment
#                          variables, e.g. "GATEWAY_TAG=3f2c1ab9d0e1 GATEWAY_VERSION=3f2c1ab9d0e1"
#   WEBHOOK_TIMEOUT        seconds to wait for Portainer's answer (default 120)
#   SKIP_HEALTH_CHECK      1: stop once the webhook accepted the deploy (as --no-health-check)
#   HEALTH_URL or PUBLIC_HOST, and HEALTH_DEADLINE, HEALTH_INTERVAL, HEALTH_SUCCESSES,
#   VERSION_HEADER, VERSION_SOURCE, HEALTH_INSECURE, HEALTH_CACERT, HEALTH_RESOLVE: for scripts/health-check.sh
#                          (see its --help); they are checked before the webhook is called.
#
# Exit status: 0 deployed and healthy; 2 usage error (a missing or malformed variable);
#              3 the webhook failed (unreachable, or an answer other than 2xx);
#              4 the webhook accepted the deploy but the health check never turned green.

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
usage_error() {
    echo "deploy: error: $*" >&2
    echo "Run $0 --help for the variables and options." >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --no-health-check) SKIP_HEALTH_CHECK=1; shift ;;
        --version)
            [ $# -ge 2 ] || usage_error "--version needs a value"
            DEPLOY_VERSION=$2
            shift 2
            ;;
        *) usage_error "unknown argument: $1" ;;
    esac
done

PORTAINER_WEBHOOK_URL=${PORTAINER_WEBHOOK_URL:-}
DEPLOY_VERSION=${DEPLOY_VERSION:-}
WEBHOOK_VARIABLES=${WEBHOOK_VARIABLES:-}
WEBHOOK_TIMEOUT=${WEBHOOK_TIMEOUT:-120}
SKIP_HEALTH_CHECK=${SKIP_HEALTH_CHECK:-0}

[ -n "$PORTAINER_WEBHOOK_URL" ] ||
    usage_error "PORTAINER_WEBHOOK_URL is not set: copy the stack's webhook URL from Portainer (Stacks > the stack > Webhook) into it (in CI: the PORTAINER_WEBHOOK_URL secret)"
case "$PORTAINER_WEBHOOK_URL" in
    http://* | https://*) ;;
    *) usage_error "PORTAINER_WEBHOOK_URL must start with http:// or https://" ;;
esac
[[ $WEBHOOK_TIMEOUT =~ ^[0-9]+([.][0-9]+)?$ ]] || usage_error "WEBHOOK_TIMEOUT must be a number of seconds, found: '$WEBHOOK_TIMEOUT'"
case "$SKIP_HEALTH_CHECK" in 0 | 1 | true | false | "") ;; *) usage_error "SKIP_HEALTH_CHECK must be 1 or 0, found: '$SKIP_HEALTH_CHECK'" ;; esac
command -v curl >/dev/null 2>&1 || usage_error "curl is not installed (it calls the webhook)"

# The webhook URL without its path, query and credentials: the token never reaches a log.
redacted=$(printf '%s' "$PORTAINER_WEBHOOK_URL" | sed -E 's#^([A-Za-z][A-Za-z0-9+.-]*://)([^@/?]*@)?([^/?]*).*#\1\3/...#')

urlencode() {
    local LC_ALL=C value=$1 out="" char i
    for ((i = 0; i < ${#value}; i++)); do
        char=${value:i:1}
        case "$char" in
            [A-Za-z0-9._~-]) out+=$char ;;
            *) printf -v char '%%%02X' "'$char"; out+=$char ;;
        esac
    done
    printf '%s' "$out"
}

url=$PORTAINER_WEBHOOK_URL
if [ -n "$WEBHOOK_VARIABLES" ]; then
    read -r -a pairs <<<"$WEBHOOK_VARIABLES"
    for pair in "${pairs[@]}"; do
        [[ $pair =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] ||
            usage_error "WEBHOOK_VARIABLES must be space-separated NAME=VALUE pairs, found: '$pair'"
        case "$url" in *\?*) url+="&" ;; *) url+="?" ;; esac
        url+="${pair%%=*}=$(urlencode "${pair#*=}")"
    done
fi

run_health_check=1
case "$SKIP_HEALTH_CHECK" in 1 | true) run_health_check=0 ;; esac
export EXPECTED_VERSION=${DEPLOY_VERSION:-${EXPECTED_VERSION:-}}
if [ "$run_health_check" = 1 ]; then
    # Fails here (exit 2) on a missing HEALTH_URL/PUBLIC_HOST, before anything is deployed.
    if ! "$SCRIPT_DIR/health-check.sh" --check-config; then
        echo "deploy: error: the health check after the deploy is not set up (see above), so nothing was deployed; set its variables or pass --no-health-check." >&2
        exit 2
    fi
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/deploy.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

names=""
[ -n "$WEBHOOK_VARIABLES" ] && names=" with $(printf '%s\n' "${pairs[@]}" | sed 's/=.*//' | paste -sd, -)"
echo "deploy: calling the Portainer stack webhook at $redacted$names${DEPLOY_VERSION:+ (version $DEPLOY_VERSION)}"
curl_status=0
status=$(curl --silent --show-error --request POST --max-time "$WEBHOOK_TIMEOUT" \
    --user-agent "ethical-gateway-deploy" --output "$scratch/body" --write-out '%{http_code}' \
    "$url" 2>"$scratch/error") || curl_status=$?
status=${status:-000}
if [ "$status" = 000 ]; then
    {
        echo "deploy: error: the Portainer webhook at $redacted could not be reached (curl exit $curl_status): $(tr '\n' ' ' <"$scratch/error")"
        echo "deploy: nothing was deployed. Check PORTAINER_WEBHOOK_URL and that Portainer is reachable from here."
    } >&2
    exit 3
fi
if ! [[ $status =~ ^2[0-9][0-9]$ ]]; then
    {
        echo "deploy: error: the Portainer webhook at $redacted answered HTTP $status (expected 2xx); the stack was not redeployed."
        echo "deploy: Portainer said: $(head -c 500 "$scratch/body" | tr '\r\n' '  ')"
        case "$status" in
            404) echo "deploy: a 404 usually means the webhook was removed or re-created: copy its new URL into PORTAINER_WEBHOOK_URL." ;;
            401 | 403) echo "deploy: the webhook is not allowed; webhooks on stacks need Portainer Business Edition." ;;
        esac
    } >&2
    exit 3
fi
echo "deploy: Portainer accepted the deploy (HTTP $status)"

if [ "$run_health_check" = 0 ]; then
    echo "deploy: health check skipped (SKIP_HEALTH_CHECK=1)"
    exit 0
fi
if ! "$SCRIPT_DIR/health-check.sh"; then
    echo "deploy: error: the stack was redeployed but did not turn healthy${EXPECTED_VERSION:+ with version $EXPECTED_VERSION}; Swarm rolls back replicas that fail their health checks (update_config.failure_action in stack.yml)." >&2
    exit 4
fi
echo "deploy: done${EXPECTED_VERSION:+: version $EXPECTED_VERSION} is live"
