# Shared by proxy.sh, tls-jwt.sh and idle-http.sh; sourced from the repository root.

# Installs from Debian what is missing: arguments are command:package pairs.
install_missing() {
    local need=() pair
    for pair in "$@"; do command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}"); done
    if [ ${#need[@]} -gt 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
}

# The release build the Dockerfile makes: no runtime exclusivity checks in any module (NIO's
# cost 12% of a proxied request's instructions; Package.swift can only turn off our own).
RELEASE_BUILD=(-c release -Xswiftc -enforce-exclusivity=unchecked)

# Builds the gateway in release mode; sets GATEWAY to the binary.
build_gateway() {
    # GATEWAY_BINARY=path measures another build (e.g. before and after a change) instead of this checkout's.
    if [ -n "${GATEWAY_BINARY:-}" ]; then
        GATEWAY="$GATEWAY_BINARY"
        return
    fi
    # Without runtime exclusivity checks in any module, as the Dockerfile builds it.
    swift build "${RELEASE_BUILD[@]}" --product ethical-gateway >/dev/null
    GATEWAY="$(swift build "${RELEASE_BUILD[@]}" --show-bin-path)/ethical-gateway"
}

# A scratch folder (WORK) and the processes started (PIDS), stopped and removed on exit.
WORK=$(mktemp -d /tmp/gateway-bench.XXXXXX)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The upstream every comparison proxies to: an nginx config (one worker, a fixed 20-byte
# answer) listening on 127.0.0.1:$1, written to $2 (its pid file beside it).
write_nginx_upstream_config() { # port config-file
    cat > "$2" <<CONF
worker_processes 1; daemon off; pid ${2%.conf}.pid; error_log /dev/null;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:$1; location / { return 200 "hello from upstream\n"; } } }
CONF
}
