/// Path handling shared by routing and backends.
public enum RequestPath {
    /// Splits a request target into path and query (`/a?b=1` -> (`/a`, `b=1`)).
    public static func split(_ uri: String) -> (path: Substring, query: Substring?) {
        guard let mark = uri.firstIndex(of: "?") else { return (Substring(uri), nil) }
        return (uri[..<mark], uri[uri.index(after: mark)...])
    }

    /// Decodes `%XX` escapes; `nil` when an escape is malformed or decodes to invalid UTF-8.
    public static func percentDecode(_ string: Substring) -> String? {
        guard string.contains("%") else { return String(string) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(string.utf8.count)
        var iterator = string.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// The value of one hex digit, either case.
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
