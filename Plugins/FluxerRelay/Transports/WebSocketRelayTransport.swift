import NIOCore
import NIOWebSocket
import WebSocketCore

/// A relay connection over a WebSocket: frames go straight to the socket through the
/// ``RawFrameWriter``, and closing sends the protocol's disconnect code in a close frame.
final class WebSocketRelayTransport: RelayTransport {
    let rawWriter: RawFrameWriter
    private let hub: LoopHub
    /// The relay connection's handler context, set while it is in the pipeline.
    var context: ChannelHandlerContext?
    /// Closes the socket if the close frame has not left by then.
    private var closeTimeoutTask: Scheduled<Void>?
    /// Whether this connection counts in the hub's `closingConnections`.
    private var countedAsClosing = false

    init(rawWriter: RawFrameWriter, hub: LoopHub) {
        self.rawWriter = rawWriter
        self.hub = hub
    }

    var isUnidirectional: Bool { false }

    var isOpen: Bool { self.context != nil }

    var isWritable: Bool { self.rawWriter.isWritable }

    func write(frame: ByteBuffer) {
        self.rawWriter.write(frame: frame)
    }

    func flush() {
        self.rawWriter.flush()
    }

    /// The relay connection drains its queue on `channelWritabilityChanged`.
    func whenWritable(_ callback: @escaping () -> Void) {}

    /// How long the socket stays open for the close frame to be written. A peer that stopped
    /// reading never takes it (the frame waits behind what it did not read), and would hold its
    /// socket until the gateway's idle timeout. A reader that is merely slow still gets the code.
    static let closeFrameTimeout = TimeAmount.seconds(1)

    /// Sends a close frame and closes the socket once it is written, or after
    /// ``closeFrameTimeout`` if it cannot be, or at once if writing fails.
    func close(_ disconnect: RelayDisconnect) {
        guard let context = self.context else { return }
        let code = WebSocketErrorCode(codeNumber: Int(disconnect.code))
        let frame = WebSocketCloseCode.frame(
            code: code,
            reason: disconnect.reason,
            allocator: context.channel.allocator
        )
        let channel = context.channel
        self.countedAsClosing = true
        self.hub.counters.closingConnections += 1
        self.closeTimeoutTask = context.eventLoop.scheduleTask(in: Self.closeFrameTimeout) {
            channel.close(promise: nil)
        }
        context.writeAndFlush(NIOAny(frame)).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    /// The socket is gone: nothing left to wait for.
    func closed() {
        self.closeTimeoutTask?.cancel()
        self.closeTimeoutTask = nil
        if self.countedAsClosing {
            self.countedAsClosing = false
            self.hub.counters.closingConnections -= 1
        }
    }
}

/// Confined to its channel's event loop, like the connection that uses it.
extension WebSocketRelayTransport: @unchecked Sendable {}
