import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A request as a ``TestUpstream`` received it.
public struct RecordedRequest: Sendable {
    public var method: String
    public var uri: String
    /// Header names lower-cased, in order.
    public var headers: [(name: String, value: String)]
    public var bodyBytes: Int
    /// The body's first ``RecordedRequest/bodyPrefixLimit`` bytes (large uploads are counted, not kept).
    public var bodyPrefix: [UInt8] = []
    /// How much of a body ``bodyPrefix`` keeps.
    public static let bodyPrefixLimit = 65536
    /// ``bodyPrefix`` as UTF-8 text.
    public var bodyText: String { String(decoding: self.bodyPrefix, as: UTF8.self) }

    public func header(_ name: String) -> String? {
        self.headers.first { $0.name == name.lowercased() }?.value
    }

    public func headers(_ name: String) -> [String] {
        self.headers.filter { $0.name == name.lowercased() }.map(\.value)
    }
}

/// What a ``TestUpstream`` answers.
public enum UpstreamReply: Sendable {
    /// A complete response.
    case text(status: Int, headers: [(String, String)], body: String)
    /// Waits, then answers.
    indirect case delayed(seconds: Double, UpstreamReply)
    /// Streams `bytes` bytes of `x` in 64 KiB chunks, each after the previous one was written.
    case stream(bytes: Int)
    /// Closes the connection without answering.
    case close
    /// Sends the head (announcing `bytes`) and the first `sentBytes`, then goes silent.
    case stall(bytes: Int, sentBytes: Int)
}

/// Something a proxy test names as an upstream: a ``TestUpstream``, a ``ClosedPort``.
public protocol UpstreamAddress: Sendable {
    /// `http://127.0.0.1:<port>` (or `https://`).
    var url: String { get }
}

extension TestUpstream: UpstreamAddress {}

/// A real HTTP/1.1 server on an ephemeral loopback port, for proxy tests: it records every
/// request (with its headers and body size) and answers as the test says.
public final class TestUpstream: Sendable {
    public let port: Int
    public let name: String
    private let channel: any Channel
    private let recorded = NIOLockedValueBox<[RecordedRequest]>([])
    private let rawBytes = NIOLockedValueBox<[UInt8]>([])
    private let connectionCount = NIOLockedValueBox(0)
    private let openConnections = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    /// How many TCP connections the server has accepted.
    public var connections: Int { self.connectionCount.withLockedValue { $0 } }

    /// Everything received so far.
    public var requests: [RecordedRequest] { self.recorded.withLockedValue { $0 } }

    /// The bytes received so far, on all connections, as they came off the wire (decrypted
    /// when the upstream uses TLS): what a probe must (not) have let through. Only the first
    /// ``ByteRecorder/limit`` bytes are kept, so streaming tests keep their memory bounded.
    public var receivedText: String { String(decoding: self.rawBytes.withLockedValue { $0 }, as: UTF8.self) }

    /// Starts a server named `name` (sent back in `x-upstream`). `reply` decides each answer.
    public init(
        name: String,
        tls certificate: TestCertificate? = nil,
        reply: @escaping @Sendable (RecordedRequest) -> UpstreamReply = { _ in .text(status: 200, headers: [], body: "")
        }
    )
        async throws
    {
        let tlsContext: NIOSSLContext? = try certificate.map { certificate in
            try NIOSSLContext(
                configuration: .makeServerConfiguration(
                    certificateChain: try NIOSSLCertificate.fromPEMFile(certificate.certificateFile.path).map {
                        .certificate($0)
                    },
                    privateKey: .privateKey(try NIOSSLPrivateKey(file: certificate.keyFile.path, format: .pem))
                )
            )
        }
        self.usesTLS = certificate != nil
        let recorded = self.recorded
        let rawBytes = self.rawBytes
        let connectionCount = self.connectionCount
        let openConnections = self.openConnections
        self.name = name
        self.channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                connectionCount.withLockedValue { $0 += 1 }
                let id = ObjectIdentifier(channel)
                openConnections.withLockedValue { $0[id] = channel }
                channel.closeFuture.whenComplete { _ in
                    _ = openConnections.withLockedValue { $0.removeValue(forKey: id) }
                }
                return channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext))
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteRecorder(bytes: rawBytes))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        TestUpstreamHandler(name: name, reply: reply) { request in
                            recorded.withLockedValue { $0.append(request) }
                        }
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        self.port = self.channel.localAddress?.port ?? 0
    }

    /// `http://127.0.0.1:<port>`.
    public var url: String { "\(self.usesTLS ? "https" : "http")://127.0.0.1:\(self.port)" }

    private let usesTLS: Bool

    /// Stops like a killed server: the listening socket and every open connection are closed.
    public func stop() async {
        try? await self.channel.close()
        for connection in self.openConnections.withLockedValue({ Array($0.values) }) {
            try? await connection.close()
        }
    }
}

/// Appends received bytes to a shared record (up to ``limit``), then passes them on.
private final class ByteRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let limit = 4 * 1024 * 1024

    let bytes: NIOLockedValueBox<[UInt8]>

    init(bytes: NIOLockedValueBox<[UInt8]>) {
        self.bytes = bytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = self.unwrapInboundIn(data)
        self.bytes.withLockedValue { bytes in
            let room = Self.limit - bytes.count
            if room > 0 { bytes.append(contentsOf: buffer.readableBytesView.prefix(room)) }
        }
        context.fireChannelRead(data)
    }
}

private final class TestUpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let name: String
    let reply: @Sendable (RecordedRequest) -> UpstreamReply
    let record: @Sendable (RecordedRequest) -> Void
    var current: RecordedRequest?

    init(
        name: String,
        reply: @escaping @Sendable (RecordedRequest) -> UpstreamReply,
        record: @escaping @Sendable (RecordedRequest) -> Void
    ) {
        self.name = name
        self.reply = reply
        self.record = record
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.current = RecordedRequest(
                method: head.method.rawValue,
                uri: head.uri,
                headers: head.headers.map { ($0.name.lowercased(), $0.value) },
                bodyBytes: 0
            )
        case .body(let buffer):
            self.current?.bodyBytes += buffer.readableBytes
            if let kept = self.current?.bodyPrefix.count, kept < RecordedRequest.bodyPrefixLimit {
                self.current?.bodyPrefix.append(
                    contentsOf: buffer.readableBytesView.prefix(RecordedRequest.bodyPrefixLimit - kept)
                )
            }
        case .end:
            guard let request = self.current else { return }
            self.current = nil
            self.record(request)
            self.answer(self.reply(request), context: context)
        }
    }

    private func answer(_ reply: UpstreamReply, context: ChannelHandlerContext) {
        switch reply {
        case .text(let status, let extra, let body):
            var headers = HTTPHeaders([("x-upstream", self.name), ("content-length", String(body.utf8.count))])
            for (name, value) in extra { headers.add(name: name, value: value) }
            context.write(
                self.wrapOutboundOut(
                    .head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: headers))
                ),
                promise: nil
            )
            context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        case .delayed(let seconds, let next):
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(seconds * 1000))) {
                self.answer(next, context: context)
            }
        case .stream(let bytes):
            let headers = HTTPHeaders([("x-upstream", self.name), ("content-length", String(bytes))])
            context.write(
                self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))),
                promise: nil
            )
            self.streamChunk(
                remaining: bytes,
                chunk: ByteBuffer(repeating: UInt8(ascii: "x"), count: 65536),
                context: context
            )
        case .close:
            context.close(promise: nil)
        case .stall(let bytes, let sentBytes):
            let headers = HTTPHeaders([("x-upstream", self.name), ("content-length", String(bytes))])
            context.write(
                self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))),
                promise: nil
            )
            context.writeAndFlush(
                self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(repeating: UInt8(ascii: "s"), count: sentBytes)))),
                promise: nil
            )
        }
    }

    private func streamChunk(remaining: Int, chunk: ByteBuffer, context: ChannelHandlerContext) {
        guard remaining > 0 else {
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        let size = min(remaining, chunk.readableBytes)
        context.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(chunk.getSlice(at: 0, length: size)!))))
            .assumeIsolated().whenSuccess {
                self.streamChunk(remaining: remaining - size, chunk: chunk, context: context)
            }
    }
}
