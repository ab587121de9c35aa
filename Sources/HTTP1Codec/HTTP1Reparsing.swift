import NIOCore

/// When a head, a trailer section or a chunk-size line that was incomplete last time is worth
/// parsing again. The parsers keep no state between calls, so a section that arrives in many
/// small reads would be parsed again on every read: quadratic time for a peer trickling it
/// byte by byte. Parsing again only when the bytes have doubled, or when the new ones may end
/// the section, keeps that linear.
enum HTTP1Reparsing {
    /// Whether parsing again can tell more than last time (`tried` bytes, incomplete): the bytes
    /// doubled, or the new ones may end it (a line feed for a `line`; for a section a line feed
    /// followed by CRLF or by another line feed, which the parser then refuses).
    static func isWorthIt(_ buffer: ByteBuffer, tried: Int, line: Bool) -> Bool {
        let count = buffer.readableBytes
        if tried == 0 || count >= 2 * tried { return true }
        return buffer.withUnsafeReadableBytes { bytes in
            if line {
                for index in (tried - 1)..<count where bytes[index] == UInt8(ascii: "\n") { return true }
                return false
            }
            var index = max(tried - 2, 0)
            while index < count - 1 {
                if bytes[index] == UInt8(ascii: "\n") {
                    let following = bytes[index + 1]
                    if following == UInt8(ascii: "\n") || following == UInt8(ascii: "\r") { return true }
                }
                index += 1
            }
            return false
        }
    }
}
