# syntax=docker/dockerfile:1
# Ethical Gateway image: built with the official Swift toolchain image in release mode with a
# static Swift standard library, run on Debian slim as an unprivileged user.
#
# Build: docker build --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" -t ethical-gateway .
# Run:   docker run --rm -p 443:8443 -p 80:8080 \
#          -v "$PWD/config/examples/container.json:/etc/ethical-gateway/gateway.json:ro" \
#          -v gateway-state:/var/lib/ethical-gateway ethical-gateway
#
# Nothing site-specific is baked in. At run time the container expects:
#   /etc/ethical-gateway/gateway.json  the config (a Swarm config in stack.yml; ETHICAL_GATEWAY_CONFIG)
#   /run/secrets/...                   certificates and keys the config names (Swarm secrets)
#   /var/lib/ethical-gateway           the config's stateDirectory (a volume, writable by uid 10001)
# The config must answer GET /healthz on the HTTPS listener at port 8443 (HEALTHCHECK below).

FROM swift:6.3-bookworm AS build
WORKDIR /src

# Dependencies first: this layer is reused until the manifest changes.
COPY Package.* ./
RUN swift package resolve

# The manifest names the test target too, so its folder must exist for the build to load.
COPY Sources ./Sources
COPY Plugins ./Plugins
COPY Tests ./Tests
# -enforce-exclusivity=unchecked for every module, NIO's too: the runtime checks cost 12% of the
# instructions of a proxied request (BENCHMARKS.md, data plane).
RUN swift build -c release --static-swift-stdlib --product ethical-gateway -Xswiftc -enforce-exclusivity=unchecked \
    && install -D -m 0755 \
        "$(swift build -c release --static-swift-stdlib --show-bin-path -Xswiftc -enforce-exclusivity=unchecked)/ethical-gateway" \
        /staging/usr/local/bin/ethical-gateway \
    && install -D -m 0755 /usr/libexec/swift/linux/swift-backtrace-static \
        /staging/usr/local/libexec/swift-backtrace-static

FROM debian:bookworm-slim

# Run-time needs of the binary: glibc, libstdc++ and libgcc (the static Swift standard library
# and Foundation are inside the binary; TLS is BoringSSL, built in), CA certificates for
# upstreams over HTTPS, and curl for the HEALTHCHECK. Versions follow the Debian release the
# image is rebuilt on, on every push, so they are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --home-dir /var/lib/ethical-gateway \
        --no-create-home --shell /usr/sbin/nologin gateway \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/ethical-gateway \
    && install -d -m 0755 /etc/ethical-gateway

COPY --from=build /staging/ /

ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/ethical-gateway/ethical-gateway
LABEL org.opencontainers.image.title="Ethical Gateway" \
      org.opencontainers.image.description="HTTPS gateway for a Docker Swarm cluster (SwiftNIO)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"

ENV ETHICAL_GATEWAY_CONFIG=/etc/ethical-gateway/gateway.json \
    SWIFT_BACKTRACE=enable=yes,sanitize=yes,threads=all,images=all,interactive=no,swift-backtrace=/usr/local/libexec/swift-backtrace-static

USER 10001:10001
WORKDIR /var/lib/ethical-gateway
VOLUME ["/var/lib/ethical-gateway"]
EXPOSE 8443 8080
STOPSIGNAL SIGTERM

# Over loopback, so --insecure: the certificate is for the public name (or the development one).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["curl", "--fail", "--silent", "--insecure", "--output", "/dev/null", "https://127.0.0.1:8443/healthz"]

ENTRYPOINT ["/usr/local/bin/ethical-gateway"]
CMD ["run"]
