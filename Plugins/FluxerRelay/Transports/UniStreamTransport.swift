import EthicalGateway
import NIOCore
import NIOHTTP1

/// A relay connection over a uni-directional HTTP response (``UniStreamKind``): each frame's
/// message, framed as an SSE event or a line, written to the response as it streams.
///
/// The response head is written with the first message (the `connect` push, or the
/// `disconnect` push of a refused connect), so the status is 200 for every connect that was
/// well-formed, as with Centrifugo. Writes follow the response's writability, which is the
/// socket's on HTTP/1.1 and the stream's flow control on HTTP/2: a slow reader fills the
/// connection's queue and meets the namespace's slow-consumer policy, as a WebSocket does.
final class UniStreamTransport: RelayTransport {
    private let response: ResponseWriter
    private let kind: UniStreamKind
    private var headWritten = false
    private var ended = false

    init(response: ResponseWriter, kind: UniStreamKind) {
        self.response = response
        self.kind = kind
    }

    var isUnidirectional: Bool { true }

    var isOpen: Bool { !self.ended && self.response.isActive }

    var isWritable: Bool { self.response.isWritable }

    func write(frame: ByteBuffer) {
        guard !self.ended else { return }
        self.writeHeadIfNeeded()
        if let prefix = self.kind.messagePrefix { self.response.queueBody(Self.buffer(prefix)) }
        self.response.queueBody(Push.unidirectionalMessage(of: frame))
        self.response.queueBody(Self.buffer(self.kind.messageSuffix))
    }

    func flush() {
        guard !self.ended else { return }
        self.response.flush()
    }

    func whenWritable(_ callback: @escaping () -> Void) {
        self.response.whenWritable(callback)
    }

    /// Writes the `disconnect` push and ends the response (the client reads the code there, as
    /// a WebSocket client reads it from the close frame).
    func close(_ disconnect: RelayDisconnect) {
        guard !self.ended else { return }
        self.write(frame: Push.frame(Push.disconnect(disconnect)))
        self.ended = true
        self.response.writeEnd()
    }

    func closed() {
        self.ended = true
    }

    private func writeHeadIfNeeded() {
        guard !self.headWritten else { return }
        self.headWritten = true
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: self.kind.contentType)
        headers.add(name: "cache-control", value: "private, no-cache, no-store, must-revalidate, max-age=0")
        // Tells nginx and others not to buffer the stream.
        headers.add(name: "x-accel-buffering", value: "no")
        self.response.writeHead(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))
        if let opening = self.kind.opening { self.response.queueBody(Self.buffer(opening)) }
    }

    private static func buffer(_ text: StaticString) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString(text)
        return buffer
    }
}

/// Confined to the request's event loop, like the connection that uses it.
extension UniStreamTransport: @unchecked Sendable {}
