import NIOCore
import NIOPosix

/// A TCP listener on 127.0.0.1 that accepts and then stays silent, optionally after answering `HELLO`.
struct UnresponsiveServer {
    /// Answers the first read with a `HELLO` map, then ignores everything.
    private final class HelloThenSilence: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        private var answered = false

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !self.answered else { return }
            self.answered = true
            let hello = "%2\r\n$5\r\nproto\r\n:3\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n"
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: hello)), promise: nil)
        }
    }

    let channel: any Channel

    var port: Int { self.channel.localAddress!.port! }

    static func start(answerHello: Bool) async throws -> UnresponsiveServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if answerHello { try channel.pipeline.syncOperations.addHandler(HelloThenSilence()) }
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return UnresponsiveServer(channel: channel)
    }

    func stop() async throws {
        try await self.channel.close()
    }
}
