public import NIOCore

/// Joins two channels into a byte tunnel, after an HTTP upgrade (WebSocket and others): what
/// one side reads, the other writes, with backpressure (a side is read only while the other can
/// take its bytes) and closing either side closes both.
public enum ByteTunnel {
    /// Installs the tunnel on `first` and `second`; both must be on the same event loop. Reading
    /// starts at once.
    ///
    /// - Parameter secondTakesBytes: completes once `second` has no handler left that expects
    ///   HTTP (a decoder whose removal finishes on a later tick); until then, what `first` reads
    ///   is held, not written to `second`. Without it, `second` must have none already. A client
    ///   may send its first WebSocket frames in the same write as its upgrade request, before
    ///   the upstream's HTTP decoder is gone: written through that decoder, which watches
    ///   outbound writes for request heads, they stopped the process.
    public static func join(
        _ first: any Channel,
        _ second: any Channel,
        secondTakesBytes: EventLoopFuture<Void>? = nil
    ) throws {
        first.eventLoop.preconditionInEventLoop()
        precondition(first.eventLoop === second.eventLoop, "a tunnel's channels share one event loop")
        let left = TunnelHandler(peer: second, peerReady: secondTakesBytes == nil)
        let right = TunnelHandler(peer: first, peerReady: true)
        if let secondTakesBytes {
            secondTakesBytes.assumeIsolated().whenComplete { result in
                switch result {
                case .success: left.peerBecameReady()
                case .failure:
                    first.close(promise: nil)
                    second.close(promise: nil)
                }
            }
        }
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
    /// Bytes read before the peer takes bytes (see `secondTakesBytes` of ``ByteTunnel/join``);
    /// `nil` once it does. Reading stops while any are held, so they stay few.
    private var held: [ByteBuffer]?

    init(peer: any Channel, peerReady: Bool) {
        self.peer = peer
        self.held = peerReady ? nil : []
    }

    /// The peer takes bytes now: writes what was held, in order, and reads on.
    fileprivate func peerBecameReady() {
        guard let held = self.held else { return }
        self.held = nil
        for buffer in held { self.peer.write(buffer, promise: nil) }
        if !held.isEmpty { self.peer.flush() }
        self.resumeReading()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if self.held != nil {
            self.held!.append(self.unwrapInboundIn(data))
            return
        }
        self.peer.write(self.unwrapInboundIn(data), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if self.held == nil { self.peer.flush() }
    }

    /// Reads only while the peer can take more (and takes bytes at all).
    func read(context: ChannelHandlerContext) {
        if self.held == nil && self.peer.isWritable {
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
