public import NIOCore
public import NIOWebSocket

/// Close codes and close frames (RFC 6455 §7.4).
public enum WebSocketCloseCode {
    /// Whether a peer may send `code` in a close frame: the codes RFC 6455 and the IANA registry
    /// define for use on the wire (1000–1003, 1007–1014), and those for libraries and
    /// applications (3000–4999). 1004–1006 and 1015 are reserved and never sent; anything else
    /// is unassigned.
    public static func isValidReceived(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }

    /// A close frame with `code` and `reason`, the reason cut to fit the 125-byte payload on a
    /// character boundary.
    public static func frame(code: WebSocketErrorCode, reason: String, allocator: ByteBufferAllocator) -> WebSocketFrame
    {
        var reasonBytes = Array(reason.utf8.prefix(123))
        while !reasonBytes.isEmpty, String(validating: reasonBytes, as: UTF8.self) == nil {
            reasonBytes.removeLast()
        }
        var data = allocator.buffer(capacity: 2 + reasonBytes.count)
        data.write(webSocketErrorCode: code)
        data.writeBytes(reasonBytes)
        return WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
    }
}
