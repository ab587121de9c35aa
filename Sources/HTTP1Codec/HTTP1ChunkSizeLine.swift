/// Parses the line that starts a chunk of a chunked body (RFC 9112 7.1):
/// `chunk-size [ chunk-ext ] CRLF`, strictly.
///
/// The size is 1 to 15 hexadecimal digits (a larger size cannot be meant and would overflow);
/// extensions, which the gateway ignores, follow the digits as `;name` or `;name=value`, the
/// name a token, the value a token or a quoted string, with no whitespace around `;` and `=`
/// (RFC 9112 7.1.1 allows it there; llhttp refuses it, and no sender needs it). Anything else
/// (a sign, a space or `0x` before the digits, a control character, a bare CR or LF) is refused:
/// a chunk size two parsers read differently is how a smuggled message hides in a body.
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
        while bytes[index] == UInt8(ascii: ";") {
            guard let next = Self.extensionEnd(bytes, from: index + 1) else {
                return .refused(HTTP1ParseError(.invalidChunkSize))
            }
            if next == bytes.count { return .incomplete }
            index = next
        }
        guard bytes[index] == UInt8(ascii: "\r") else { return .refused(HTTP1ParseError(.invalidChunkSize)) }
        if index + 1 == bytes.count { return .incomplete }
        guard bytes[index + 1] == UInt8(ascii: "\n") else { return .refused(HTTP1ParseError(.bareCR)) }
        return .complete(size: size, length: index + 2)
    }

    /// Where the extension `name[=value]` starting at `start` ends (`bytes.count` when it may go
    /// on in bytes not yet received), or nil when it is not a token name with a token or
    /// quoted-string value.
    private static func extensionEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        let count = bytes.count
        var index = start
        while index < count, HTTP1RequestHeadParser.isTokenByte(bytes[index]) { index += 1 }
        if index == count { return count }
        guard index > start else { return nil }
        guard bytes[index] == UInt8(ascii: "=") else { return index }
        index += 1
        if index == count { return count }
        guard bytes[index] == UInt8(ascii: "\"") else {
            let valueStart = index
            while index < count, HTTP1RequestHeadParser.isTokenByte(bytes[index]) { index += 1 }
            return index == count || index > valueStart ? index : nil
        }
        // quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE (RFC 9110 5.6.4)
        index += 1
        while index < count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { return index + 1 }
            if byte == UInt8(ascii: "\\") {
                if index + 1 == count { return count }
                index += 1
            }
            guard Self.isQuotedTextByte(bytes[index]) else { return nil }
            index += 1
        }
        return count
    }

    /// HTAB, SP, visible ASCII and obs-text: what a quoted string (or a quoted pair) may hold.
    @inline(__always)
    private static func isQuotedTextByte(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\t") || byte >= 0x20 && byte != 0x7F
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
