import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOSSL
import NIOTLS

/// Builds the channel pipeline of each accepted connection, synchronously on its event loop:
///
/// ```
/// IdleConnectionHandler -> [TLS -> handshake timeout -> ALPN] -> HTTP/1.1: the gateway's own
/// request decoder (HTTP1RequestDecodingHandler: limits, header-read timeout, body framing),
/// GatewayHTTPHandler (pipelining, the response written as bytes and checked)
///                                                       -> HTTP/2: NIOHTTP2Handler, per stream
/// HTTP2RequestHeadGuard, HTTP2ServerStreamCodec, GatewayHTTPHandler (a stream that becomes a
/// WebSocket: HTTP2StreamTunnelHandler, then the WebSocket layer or a ByteTunnel)
/// ```
struct ListenerPipeline: Sendable {
    enum Kind: Sendable {
        case plain
        /// TLS, with the `Strict-Transport-Security` value to send, if any, and the listener's
        /// handshake counters.
        case tls(NIOSSLContext, hsts: String?, handshakes: TLSHandshakeCounters?)
        case redirectToHTTPS(port: Int)

        /// How logs name the kind.
        var name: String {
            switch self {
            case .plain: return "http"
            case .tls: return "https"
            case .redirectToHTTPS: return "redirect-to-https"
            }
        }
    }

    let kind: Kind
    /// The runtime in service; each connection reads its limits when it is accepted.
    let live: LiveRuntime
    let logger: Logger

    /// Receive buffer sizes of accepted connections: 1 KiB first, doubling after a read that
    /// fills the buffer, up to 64 KiB; halving after small reads (NIO's pooled buffer keeps its
    /// largest size, though, so a small start is what keeps idle connections small).
    static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1024, maximum: 65536)

    func configure(_ channel: any Channel) throws {
        let limits = self.live.runtime(on: channel.eventLoop).limits
        let sync = channel.pipeline.syncOperations
        let idle = IdleConnectionHandler(timeout: .seconds(limits.idleTimeoutSeconds))
        try sync.addHandler(idle)
        switch self.kind {
        case .plain:
            try self.configureHTTP1(channel, scheme: "http", idle: idle)
        case .redirectToHTTPS(let port):
            let headGuard = RequestHeadGuard(limits: limits)
            try sync.addHandler(headGuard)
            try sync.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
            try sync.addHandler(RedirectToHTTPSHandler(httpsPort: port, headGuard: headGuard))
            try sync.addHandler(CloseOnInputClosedHandler())
        case .tls(let context, let hsts, let handshakes):
            try sync.addHandler(NIOSSLServerHandler(context: context))
            try sync.addHandler(
                TLSHandshakeTimeoutHandler(timeout: .seconds(limits.headerReadTimeoutSeconds), counters: handshakes)
            )
            let pipeline = self
            let loopBoundIdle = NIOLoopBound(idle, eventLoop: channel.eventLoop)
            try sync.addHandler(
                ApplicationProtocolNegotiationHandler { result, channel in
                    channel.eventLoop.makeCompletedFuture {
                        switch result {
                        case .negotiated("h2"):
                            try pipeline.configureHTTP2(channel, hsts: hsts, idle: loopBoundIdle)
                        default:
                            try pipeline.configureHTTP1(channel, scheme: "https", hsts: hsts, idle: loopBoundIdle.value)
                        }
                    }
                }
            )
        }
    }

    private func configureHTTP1(
        _ channel: any Channel,
        scheme: String,
        hsts: String? = nil,
        idle: IdleConnectionHandler
    ) throws {
        let sync = channel.pipeline.syncOperations
        let decoder = try Self.addHTTP1RequestDecoder(
            to: sync,
            limits: self.live.runtime(on: channel.eventLoop).limits
        )
        try sync.addHandler(
            GatewayHTTPHandler(
                live: self.live,
                scheme: scheme,
                isHTTP2: false,
                requestDecoder: decoder,
                hsts: hsts,
                idleHandler: idle,
                logger: self.logger
            )
        )
    }

    /// The gateway's request decoder, alone: ``GatewayHTTPHandler`` writes the responses as
    /// bytes (``HTTP1ResponseEncoder``, told by the handler which responses answer `HEAD`), does
    /// the pipelining, answers malformed requests (a problem document with a request id) and
    /// checks response heads, so no request or response part crosses more handlers on its way.
    @discardableResult
    static func addHTTP1RequestDecoder(
        to sync: ChannelPipeline.SynchronousOperations,
        limits: RequestLimits
    ) throws -> HTTP1RequestDecodingHandler {
        let decoder = HTTP1RequestDecodingHandler(limits: limits)
        try sync.addHandler(decoder)
        return decoder
    }

    private func configureHTTP2(
        _ channel: any Channel,
        hsts: String?,
        idle: NIOLoopBound<IdleConnectionHandler>
    ) throws {
        let limits = self.live.runtime(on: channel.eventLoop).limits
        let manager = NIOHTTP2ServerConnectionManagementHandler(
            eventLoop: channel.eventLoop,
            configuration: .init(maxIdleTime: nil, maxAge: nil, maxGraceTime: nil, keepalive: nil)
        )
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 256),
            HTTP2Setting(parameter: .maxHeaderListSize, value: limits.maxHeaderBytes + limits.maxURIBytes),
            // WebSocket over HTTP/2 (RFC 8441): clients may open streams with extended CONNECT.
            HTTP2Setting(parameter: .enableConnectProtocol, value: 1),
        ]
        let live = self.live
        let logger = self.logger
        _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .server,
            connectionConfiguration: connection,
            streamConfiguration: .init(),
            streamDelegate: manager.http2StreamDelegate
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                let handlers = HTTP2StreamHandlers(headGuard: HTTP2RequestHeadGuard(), codec: HTTP2ServerStreamCodec())
                try stream.pipeline.syncOperations.addHandler(handlers.headGuard)
                try stream.pipeline.syncOperations.addHandler(handlers.codec)
                try stream.pipeline.syncOperations.addHandler(
                    GatewayHTTPHandler(
                        live: live,
                        scheme: "https",
                        isHTTP2: true,
                        requestDecoder: nil,
                        hsts: hsts,
                        idleHandler: idle.value,
                        http2Stream: handlers,
                        logger: logger
                    )
                )
            }
        }
        try channel.pipeline.syncOperations.addHandler(manager)
        try channel.pipeline.syncOperations.addHandler(CloseOnInputClosedHandler())
    }
}

extension TimeAmount {
    static func seconds(_ seconds: Double) -> TimeAmount {
        .nanoseconds(Int64(seconds * 1_000_000_000))
    }
}

/// The handlers of one HTTP/2 stream before its ``GatewayHTTPHandler``.
struct HTTP2StreamHandlers {
    let headGuard: HTTP2RequestHeadGuard
    let codec: HTTP2ServerStreamCodec
}
