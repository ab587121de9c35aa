import EthicalGateway
import NIOCore
import NIOHTTP1
import NIOWebSocket
import WebSocketCore

/// The `fluxer-relay` backend: what it answers, by the path it sees after the route's rewrite.
///
/// - `GET /connection/websocket` with `Upgrade: websocket` (or, over HTTP/2, an extended CONNECT
///   with `:protocol websocket`, RFC 8441): the client protocol.
/// - `/connection/uni_sse` and `/connection/uni_http_stream`: the uni-directional transports
///   (``UniStreamKind``), pushes only, over Server-Sent Events or HTTP streaming.
/// - `/api/…`: the HTTP API for services (``RelayAPI``).
/// - `GET /fluxer-relay.js`: the browser client.
/// - `GET /health`: readiness, 200 while the engine can serve and 503 (a problem document
///   saying what is unavailable) while it cannot; no credentials, nothing confidential.
struct RelayBackend: Backend {
    let relay: Relay

    static let websocketPath = "/connection/websocket"
    static let apiPrefix = "/api/"
    static let clientScriptPath = "/fluxer-relay.js"
    static let healthPath = "/health"

    func handle(_ request: GatewayRequest, response: ResponseWriter) -> any RequestBodyReceiver {
        let path = request.path
        if path == Self.websocketPath {
            self.upgrade(request, response: response)
            return DiscardingBodyReceiver.shared
        }
        if let kind = UniStreamKind(path: path) {
            return UniStreamRequest(relay: self.relay, request: request, response: response, kind: kind).start()
        }
        if path.hasPrefix(Self.apiPrefix) {
            return RelayAPI(relay: self.relay, request: request, response: response).start()
        }
        if path == Self.clientScriptPath, request.head.method == .GET || request.head.method == .HEAD {
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "text/javascript; charset=utf-8")
            headers.add(name: "cache-control", value: "public, max-age=300")
            response.respond(GatewayResponse(status: .ok, headers: headers, body: self.relay.clientScript))
            return DiscardingBodyReceiver.shared
        }
        if path == Self.healthPath, request.head.method == .GET || request.head.method == .HEAD {
            self.health(response: response)
            return DiscardingBodyReceiver.shared
        }
        response.respondWithProblem(
            .notFound,
            detail:
                "the relay answers \(Self.websocketPath) (WebSocket), \(UniStreamKind.ssePath) (Server-Sent Events), \(UniStreamKind.httpStreamPath) (HTTP streaming), \(Self.apiPrefix)… (HTTP API), \(Self.clientScriptPath) and \(Self.healthPath)"
        )
        return DiscardingBodyReceiver.shared
    }

    private func upgrade(_ request: GatewayRequest, response: ResponseWriter) {
        let configuration = self.relay.configuration
        switch RelayHandshake.evaluate(request.head, permessageDeflate: configuration.permessageDeflate) {
        case .refuse(let status, let detail):
            response.respondWithProblem(status, detail: detail)
        case .accept(let accepted):
            let relay = self.relay
            let identity = request.identity
            let logger = request.logger
            let maxMessageBytes = configuration.maxMessageBytes
            let deflate = accepted.deflate
            let format = RelayFormat.negotiated(subprotocol: accepted.subprotocol, query: request.query)
            let overHTTP2 = request.head.version.major == 2
            let upgraded = response.upgrade(accepted.head) { channel in
                do {
                    let hub = relay.hub.hub(for: channel.eventLoop)
                    let sync = channel.pipeline.syncOperations
                    let rawWriter = RawFrameWriter()
                    try sync.addHandler(rawWriter)
                    try WebSocketPipeline.addHandlers(
                        to: sync,
                        maxMessageBytes: maxMessageBytes,
                        deflate: deflate,
                        compressOutbound: false
                    )
                    try sync.addHandler(
                        RelayConnection(
                            relay: relay,
                            hub: hub,
                            rawWriter: rawWriter,
                            identity: identity,
                            format: format,
                            logger: logger
                        )
                    )
                    // An HTTP/2 stream (RFC 8441) has neither socket options nor a write buffer
                    // of its own (NIO's stream channel traps on them): its writability follows
                    // the stream's flow-control window.
                    if !overHTTP2 {
                        try channel.syncOptions?.setOption(
                            .writeBufferWaterMark,
                            value: ChannelOptions.Types.WriteBufferWaterMark(low: 32 * 1024, high: 64 * 1024)
                        )
                        if let bytes = relay.configuration.sendBufferBytes {
                            try channel.syncOptions?.setOption(.socketOption(.so_sndbuf), value: .init(bytes))
                        }
                    }
                    // The HTTP handler may have held back a read; the relay reads freely.
                    try channel.syncOptions?.setOption(.autoRead, value: true)
                    channel.read()
                } catch {
                    logger.warning("relay connection set-up failed", metadata: ["error": "\(error)"])
                    channel.close(promise: nil)
                }
            }
            if !upgraded { response.respondWithProblem(.badRequest, detail: WebSocketHandshake.cannotSwitchDetail) }
        }
    }

    private func health(response: ResponseWriter) {
        let health = self.relay.engine.health
        guard health.ready else {
            response.respondWithProblem(.serviceUnavailable, detail: "not ready: \(health.detail)")
            return
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "cache-control", value: "no-store")
        let body = WireJSON.object([
            "status": .string("ready"), "engine": .string(self.relay.configuration.engine.type.rawValue),
        ]).encoded
        response.respond(GatewayResponse(status: .ok, headers: headers, body: body))
    }

    func start() {
        self.relay.start()
    }

    var isReady: Bool { self.relay.engine.health.ready }

    var readinessDetail: String { self.relay.engine.health.ready ? "" : self.relay.engine.health.detail }

    func quiesce() {
        self.relay.quiesceStreams()
    }

    func shutdown() async {
        await self.relay.retire()
    }
}
