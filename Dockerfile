# syntax=docker/dockerfile:1
# Build: docker build -t ethical-gateway .
# Run:   docker run -p 443:8443 -v "$PWD/config:/etc/ethical-gateway:ro" -v gateway-state:/var/lib/ethical-gateway ethical-gateway

FROM swift:6.3-bookworm AS build
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Plugins ./Plugins
COPY Tests ./Tests
RUN swift build -c release --static-swift-stdlib --product ethical-gateway \
    && install -D "$(swift build -c release --show-bin-path)/ethical-gateway" /out/ethical-gateway

FROM debian:bookworm-slim
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="Ethical Gateway" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/ethical-gateway/ethical-gateway"
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/ethical-gateway --create-home gateway
COPY --from=build /out/ethical-gateway /usr/local/bin/ethical-gateway
USER gateway
ENV ETHICAL_GATEWAY_CONFIG=/etc/ethical-gateway/gateway.json
EXPOSE 8443 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["curl", "-fsk", "https://127.0.0.1:8443/healthz"]
ENTRYPOINT ["ethical-gateway"]
CMD ["run"]
