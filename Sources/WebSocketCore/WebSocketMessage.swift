public import NIOCore

/// A whole WebSocket data message: its fragments joined, inflated when it came compressed, and
/// (for text) checked to be UTF-8.
public struct WebSocketMessage: Sendable {
    /// Text (UTF-8, already validated) or binary.
    public enum Kind: Sendable, Equatable {
        case text
        case binary
    }

    public var kind: Kind
    public var data: ByteBuffer

    public init(kind: Kind, data: ByteBuffer) {
        self.kind = kind
        self.data = data
    }
}
