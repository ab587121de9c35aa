import NIOCore

/// Where one relay connection's frames go: a WebSocket (``WebSocketRelayTransport``) or a
/// uni-directional HTTP stream (``UniStreamTransport``: Server-Sent Events or HTTP streaming).
///
/// The connection encodes every frame once as a WebSocket frame (``Push/frame(_:opcode:)``),
/// so that a publication is shared by every subscriber; a transport that is not a WebSocket
/// takes the message out of it. All calls happen on the connection's event loop.
protocol RelayTransport: AnyObject {
    /// Whether the client only receives: it sends no commands after `connect` (which came
    /// with the request), answers no pings, and gets `connect` and `disconnect` as pushes.
    var isUnidirectional: Bool { get }
    /// Whether frames can still be written.
    var isOpen: Bool { get }
    /// Whether the socket (or HTTP/2 stream) can take more now; when not, the connection
    /// queues and waits for ``whenWritable(_:)``.
    var isWritable: Bool { get }
    /// Queues one frame (see ``Push/frame(_:opcode:)``) until ``flush()``.
    func write(frame: ByteBuffer)
    /// Sends what was written.
    func flush()
    /// Calls `callback` once the transport can take more (a WebSocket tells its handler instead).
    func whenWritable(_ callback: @escaping () -> Void)
    /// Ends the connection with `disconnect`, after what was written, within a bounded time.
    func close(_ disconnect: RelayDisconnect)
    /// The socket or stream is gone.
    func closed()
}
