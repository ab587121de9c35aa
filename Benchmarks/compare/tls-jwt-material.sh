# TLS and JWT material for the TLS + JWT benchmarks (tls-jwt.sh, callgrind-tls-jwt.sh); sourced
# after common.sh, from the repository root. Made with openssl, not with the gateway's own code:
# a self-signed RSA-2048 server certificate ($WORK/server.crt, .key, and .pem for HAProxy), an
# RSA-2048 issuer key whose modulus is in MODULUS (base64url, for an inline JWK), and `mint`.
b64url() { basenc --base64url -w0 | tr -d '='; }

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/server.key" -out "$WORK/server.crt" -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
cat "$WORK/server.crt" "$WORK/server.key" > "$WORK/server.pem"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/jwt.key" 2>/dev/null
openssl pkey -in "$WORK/jwt.key" -pubout -out "$WORK/jwt.pub"
MODULUS=$(openssl rsa -in "$WORK/jwt.key" -noout -modulus | cut -d= -f2 \
    | python3 -c 'import base64, sys; print(base64.urlsafe_b64encode(bytes.fromhex(sys.stdin.read().strip())).decode().rstrip("="))')

mint() { # exp-offset-seconds -> an RS256 token signed with the issuer's key
    local now header payload input
    now=$(date +%s)
    header=$(printf '{"alg":"RS256","typ":"JWT","kid":"bench"}' | b64url)
    payload=$(printf '{"iss":"https://issuer.bench","aud":"api","sub":"alice","iat":%d,"exp":%d}' "$now" "$((now + $1))" | b64url)
    input="$header.$payload"
    printf '%s.%s' "$input" "$(printf '%s' "$input" | openssl dgst -sha256 -sign "$WORK/jwt.key" -binary | b64url)"
}

# The gateway's config: an HTTPS listener on $1 with the server certificate, the issuer with the
# key inline, `/direct` answered by `respond` and `/proxy` by `http-proxy` to the upstream on $2,
# both with `auth`. Written to $WORK/gateway.json.
write_tls_jwt_gateway_config() { # gateway-port upstream-port
    cat > "$WORK/gateway.json" <<CONF
{ "logLevel": "warning",
  "listeners": [ { "name": "https", "address": "127.0.0.1", "port": $1,
                   "tls": { "certificates": [ { "certificateFile": "server.crt", "keyFile": "server.key" } ] } } ],
  "issuers": { "bench": { "issuer": "https://issuer.bench", "audiences": ["api"], "algorithms": ["RS256"],
                          "keys": [ { "kty": "RSA", "kid": "bench", "n": "$MODULUS", "e": "AQAB" } ] } },
  "routes": [
    { "name": "proxy", "match": { "pathPrefix": "/proxy" }, "backend": "app", "auth": { "issuers": ["bench"] } },
    { "name": "direct", "match": { "pathPrefix": "/direct" }, "backend": "ok", "auth": { "issuers": ["bench"] } } ],
  "backends": {
    "ok": { "plugin": "respond", "config": { "status": 200, "body": "ok" } },
    "app": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "http://127.0.0.1:$2" } ] } } } }
CONF
}
