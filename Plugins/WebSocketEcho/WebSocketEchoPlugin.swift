public import EthicalGateway
import NIOCore
import NIOHTTP1
import WebSocketCore

/// The `websocket-echo` backend: accepts a WebSocket on any path, over HTTP/1.1 or HTTP/2
/// (RFC 8441 extended CONNECT), and sends every text and
/// binary message back as it came. For checking that WebSocket upgrades, long-lived
/// connections, large and fragmented messages and compression make it through a chain of
/// proxies and load balancers; also what the Autobahn|Testsuite run (`scripts/autobahn.sh`)
/// tests the gateway's WebSocket layer against.
///
/// ```json
/// "echo": { "plugin": "websocket-echo", "config": { "maxMessageBytes": 1048576 } }
/// ```
public enum WebSocketEchoPlugin: BackendPlugin {
    public static let id = "websocket-echo"

    /// Configuration of a `websocket-echo` backend.
    public struct Configuration: Decodable, Sendable {
        /// The largest message echoed, in bytes after decompression, 1 to 67108864 (64 MiB);
        /// a larger one closes the connection with 1009. Default 1048576 (1 MiB).
        public var maxMessageBytes: Int
        /// Whether to accept a client's `permessage-deflate` offer (RFC 7692) and compress the
        /// echoes. Default `true`.
        public var permessageDeflate: Bool

        enum CodingKeys: String, CodingKey { case maxMessageBytes, permessageDeflate }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.maxMessageBytes = try container.decodeIfPresent(Int.self, forKey: .maxMessageBytes) ?? 1 << 20
            self.permessageDeflate = try container.decodeIfPresent(Bool.self, forKey: .permessageDeflate) ?? true
        }
    }

    /// The largest `maxMessageBytes` accepted.
    public static let maxMessageBytesLimit = 64 << 20

    public static func provision(_ configuration: Configuration, context: PluginContext) throws -> any Backend {
        guard (1...Self.maxMessageBytesLimit).contains(configuration.maxMessageBytes) else {
            throw context.error(
                "maxMessageBytes",
                "expected 1 to \(Self.maxMessageBytesLimit), found \(configuration.maxMessageBytes)"
            )
        }
        return WebSocketEchoBackend(configuration: configuration)
    }
}

/// Upgrades every request to a WebSocket that echoes; anything that is not a WebSocket
/// handshake gets a problem document saying what was wrong with it.
struct WebSocketEchoBackend: Backend {
    let configuration: WebSocketEchoPlugin.Configuration

    func handle(_ request: GatewayRequest, response: ResponseWriter) -> any RequestBodyReceiver {
        switch WebSocketHandshake.evaluate(request.head, permessageDeflate: self.configuration.permessageDeflate) {
        case .refuse(let status, let detail):
            response.respondWithProblem(status, detail: detail)
        case .accept(let accepted):
            let maxMessageBytes = self.configuration.maxMessageBytes
            let deflate = accepted.deflate
            let logger = request.logger
            let upgraded = response.upgrade(accepted.head) { channel in
                do {
                    let sync = channel.pipeline.syncOperations
                    try WebSocketPipeline.addHandlers(
                        to: sync,
                        maxMessageBytes: maxMessageBytes,
                        deflate: deflate,
                        compressOutbound: true
                    )
                    try sync.addHandler(WebSocketEchoHandler())
                    // The HTTP handler may have held back a read; the echo reads while it can write.
                    try channel.syncOptions?.setOption(.autoRead, value: true)
                    channel.read()
                } catch {
                    logger.warning("websocket-echo set-up failed", metadata: ["error": "\(error)"])
                    channel.close(promise: nil)
                }
            }
            if !upgraded { response.respondWithProblem(.badRequest, detail: WebSocketHandshake.cannotSwitchDetail) }
        }
        return DiscardingBodyReceiver.shared
    }
}
