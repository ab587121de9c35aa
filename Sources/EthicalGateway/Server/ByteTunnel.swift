public import NIOCore

/// Joins two channels into a byte tunnel, after an HTTP upgrade (WebSocket and others): what
/// one side reads, the other writes, with backpressure (a side is read only while the other can
/// take its bytes) and closing either side closes both.
public enum ByteTunnel {
    /// Installs the tunnel on `first` and `second`; both must be on the same event loop and
    /// have no handlers left that expect HTTP. Reading starts at once.
    public static func join(_ first: any Channel, _ second: any Channel) throws {
        first.eventLoop.preconditionInEventLoop()
        precondition(first.eventLoop === second.eventLoop, "a tunnel's channels share one event loop")
        let left = TunnelHandler(peer: second)
        let right = TunnelHandler(peer: first)
        left.partner = right
        right.partner = left
        try first.pipeline.syncOperations.addHandler(left)
        try second.pipeline.syncOperations.addHandler(right)
        // From here on reading is paced by TunnelHandler.read, which holds reads while the peer is full.
        try first.syncOptions?.setOption(.autoRead, value: true)
        try second.syncOptions?.setOption(.autoRead, value: true)
        first.read()
        second.read()
    }
}

/// One end of a ``ByteTunnel``.
final class TunnelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let peer: any Channel
    weak var partner: TunnelHandler?
    private var context: ChannelHandlerContext?
    private var readPending = false

    init(peer: any Channel) {
        self.peer = peer
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.peer.write(self.unwrapInboundIn(data), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.peer.flush()
    }

    /// Reads only while the peer can take more.
    func read(context: ChannelHandlerContext) {
        if self.peer.isWritable {
            context.read()
        } else {
            self.readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.partner?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    private func resumeReading() {
        guard self.readPending, let context = self.context else { return }
        self.readPending = false
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.peer.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension TunnelHandler: Sendable {}
