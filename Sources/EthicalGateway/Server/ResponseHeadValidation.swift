/// Whether a response head is safe to put on the wire: field names are tokens and field values
/// hold no control characters but HTAB (RFC 9110 5.1, 5.5), and a custom reason phrase none at
/// all. A header from an upstream or a filter that fails this would let it split the response.
///
/// The same rule as NIO's `NIOHTTPResponseHeadersValidator`, applied by ``HTTP1ResponseEncoder``
/// to each field as it writes the head, instead of in a handler of its own on every response
/// part's way.
enum FieldBytes {
    /// tchar (RFC 9110 5.6.2) as two 64-bit masks: bytes 0-63 and 64-127.
    private static let tokenMask: (low: UInt64, high: UInt64) = {
        var low: UInt64 = 0
        var high: UInt64 = 0
        for byte in Array("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8) {
            if byte < 64 { low |= 1 << UInt64(byte) } else { high |= 1 << UInt64(byte - 64) }
        }
        return (low, high)
    }()

    static func isToken(_ string: String) -> Bool {
        var string = string
        let mask = Self.tokenMask
        return string.withUTF8 { bytes in
            guard !bytes.isEmpty else { return false }
            for byte in bytes {
                let allowed =
                    byte < 64 ? (mask.low >> UInt64(byte)) & 1 : byte < 128 ? (mask.high >> UInt64(byte - 64)) & 1 : 0
                if allowed == 0 { return false }
            }
            return true
        }
    }

    /// No control characters but HTAB; obs-text (0x80-0xFF) is allowed.
    static func isValue(_ string: String) -> Bool {
        var string = string
        return string.withUTF8 { bytes in
            for byte in bytes where (byte < 0x20 && byte != 0x09) || byte == 0x7F { return false }
            return true
        }
    }
}
