/// Parses the line that starts a chunk of a chunked body (RFC 9112 7.1):
/// `chunk-size [ chunk-ext ] CRLF`, strictly.
///
/// The size is 1 to 15 hexadecimal digits (a larger size cannot be meant and would overflow);
/// extensions, which the gateway ignores, start with `;` right after the digits and may hold
/// visible characters, spaces and tabs, never control characters. Anything else (a sign, a
/// space or `0x` before the digits, a bare CR or LF) is refused: a chunk size two parsers read
/// differently is how a smuggled request hides in a body.
public enum HTTP1ChunkSizeLine {
    public enum Result: Sendable, Hashable {
        case incomplete
        /// The chunk's size, and the bytes of the line including its CRLF.
        case complete(size: Int, length: Int)
        case refused(HTTP1ParseError)
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Result {
        var index = 0
        var size = 0
        while index < bytes.count, let digit = Self.hexValue(bytes[index]) {
            guard index < 15 else { return .refused(HTTP1ParseError(.invalidChunkSize)) }
            size = size << 4 | digit
            index += 1
        }
        if index == bytes.count { return .incomplete }
        guard index > 0 else { return .refused(HTTP1ParseError(.invalidChunkSize)) }
        if bytes[index] == UInt8(ascii: ";") {
            index += 1
            while index < bytes.count {
                let byte = bytes[index]
                guard byte >= 0x20 && byte != 0x7F || byte == UInt8(ascii: "\t") else { break }
                index += 1
            }
            if index == bytes.count { return .incomplete }
        }
        guard bytes[index] == UInt8(ascii: "\r") else { return .refused(HTTP1ParseError(.invalidChunkSize)) }
        if index + 1 == bytes.count { return .incomplete }
        guard bytes[index + 1] == UInt8(ascii: "\n") else { return .refused(HTTP1ParseError(.bareCR)) }
        return .complete(size: size, length: index + 2)
    }

    @inline(__always)
    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
