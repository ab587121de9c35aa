import NIOCore

/// The Protobuf format's framing: a WebSocket binary message holds one or more messages, each
/// prefixed with its length as a base-128 varint (as `protobuf`'s `writeDelimitedTo` writes).
enum ProtobufFraming {
    /// Why a binary message does not split into length-delimited messages.
    struct MalformedFrame: Error, CustomStringConvertible {
        let description: String
    }

    /// The messages of one binary WebSocket message, in order.
    ///
    /// - Throws: ``MalformedFrame`` when a length prefix is longer than 10 bytes or runs past the
    ///   end, or a message is shorter than its prefix says.
    static func split(_ frame: ByteBuffer) throws(MalformedFrame) -> [[UInt8]] {
        var buffer = frame
        var messages: [[UInt8]] = []
        while buffer.readableBytes > 0 {
            let start = frame.readableBytes - buffer.readableBytes
            var length: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard let byte = buffer.readInteger(as: UInt8.self) else {
                    throw MalformedFrame(description: "the length prefix at byte \(start) runs past the frame's end")
                }
                // The tenth byte holds the 64th bit only: anything more would overflow (Protobuf's
                // own parsers refuse it too).
                guard shift < 64, shift < 63 || byte <= 1 else {
                    throw MalformedFrame(
                        description: "the length prefix at byte \(start) is longer than 10 bytes or overflows 64 bits"
                    )
                }
                length |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { break }
                shift += 7
            }
            guard length <= UInt64(buffer.readableBytes), let message = buffer.readBytes(length: Int(length)) else {
                throw MalformedFrame(
                    description:
                        "the message at byte \(start) says \(length) bytes; the frame has \(buffer.readableBytes) left"
                )
            }
            messages.append(message)
        }
        return messages
    }

    /// Appends `length` as a varint.
    static func writeLength(_ length: Int, to buffer: inout ByteBuffer) {
        var value = UInt64(length)
        while value >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        buffer.writeInteger(UInt8(value))
    }
}
