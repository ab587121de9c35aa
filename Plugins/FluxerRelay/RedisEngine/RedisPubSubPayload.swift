import NIOCore

/// What travels on a channel's pub/sub channel between nodes. The first byte says what it is:
///
/// - `p<offset>:<epoch>:<publication JSON without offset>`: a publication (offset 0 and an empty
///   epoch when the namespace keeps no history). The publish script writes it, so the offset is
///   the one Redis assigned, and every node delivers in offset order.
/// - `j<info JSON>`, `l<info JSON>`: a join or leave.
enum RedisPubSubPayload: Equatable {
    case publication(offset: UInt64, epoch: String, body: ByteBuffer)
    case join(ByteBuffer)
    case leave(ByteBuffer)

    /// Reads a payload; `nil` for anything else (another writer on the same prefix).
    init?(_ payload: ByteBuffer) {
        var payload = payload
        guard let kind = payload.readInteger(as: UInt8.self) else { return nil }
        switch kind {
        case UInt8(ascii: "j"): self = .join(payload)
        case UInt8(ascii: "l"): self = .leave(payload)
        case UInt8(ascii: "p"):
            guard let offsetText = Self.readField(&payload), let offset = UInt64(offsetText),
                let epoch = Self.readField(&payload)
            else { return nil }
            self = .publication(offset: offset, epoch: epoch, body: payload)
        default: return nil
        }
    }

    /// The text up to the next `:`, which is consumed.
    private static func readField(_ buffer: inout ByteBuffer) -> String? {
        guard let end = buffer.readableBytesView.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        let length = end - buffer.readerIndex
        let text = buffer.readString(length: length)
        buffer.moveReaderIndex(forwardBy: 1)
        return text
    }

    /// The publication JSON with `"offset":N` added as its first member (nothing is added at 0,
    /// as the protocol omits a zero offset). `body` is a JSON object.
    static func withOffset(_ body: ByteBuffer, offset: UInt64) -> ByteBuffer {
        guard offset > 0 else { return body }
        var rest = body
        guard rest.readInteger(as: UInt8.self) == UInt8(ascii: "{") else { return body }
        var result = ByteBuffer()
        result.reserveCapacity(body.readableBytes + 32)
        result.writeStaticString("{\"offset\":")
        result.writeString(String(offset))
        if rest.readableBytesView.first != UInt8(ascii: "}") { result.writeStaticString(",") }
        result.writeBuffer(&rest)
        return result
    }
}
