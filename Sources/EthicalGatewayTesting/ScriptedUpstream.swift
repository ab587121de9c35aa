import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A misbehaving upstream for fault tests: on each connection it waits for the end of a request
/// head, then writes exactly the bytes it was given (a malformed response, a response cut short)
/// and, if asked, closes the connection. Listens on an ephemeral loopback port.
public final class ScriptedUpstream: UpstreamAddress, Sendable {
    public let port: Int
    private let channel: any Channel
    private let requestCount = NIOLockedValueBox(0)

    /// How many request heads it received.
    public var requests: Int { self.requestCount.withLockedValue { $0 } }

    public var url: String { "http://127.0.0.1:\(self.port)" }

    /// - Parameters:
    ///   - reply: the raw bytes written after each request head.
    ///   - closeAfterReply: close the connection once they are written.
    public init(reply: String, closeAfterReply: Bool) async throws {
        let count = self.requestCount
        self.channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ScriptedReplyHandler(reply: reply, closeAfterReply: closeAfterReply) {
                            count.withLockedValue { $0 += 1 }
                        }
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        self.port = self.channel.localAddress?.port ?? 0
    }

    public func stop() async {
        try? await self.channel.close()
    }
}

private final class ScriptedReplyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let reply: String
    private let closeAfterReply: Bool
    private let onRequest: @Sendable () -> Void
    private var received: [UInt8] = []

    init(reply: String, closeAfterReply: Bool, onRequest: @escaping @Sendable () -> Void) {
        self.reply = reply
        self.closeAfterReply = closeAfterReply
        self.onRequest = onRequest
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.received.append(contentsOf: self.unwrapInboundIn(data).readableBytesView)
        let end: [UInt8] = Array("\r\n\r\n".utf8)
        while let index = self.received.firstRange(of: end) {
            self.received.removeSubrange(..<index.upperBound)
            self.onRequest()
            let written = context.writeAndFlush(
                self.wrapOutboundOut(context.channel.allocator.buffer(string: self.reply))
            )
            if self.closeAfterReply {
                written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                return
            }
        }
    }
}

@available(*, unavailable)
extension ScriptedReplyHandler: Sendable {}
