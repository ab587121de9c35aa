/// Request ids: the client's `X-Request-ID` when it is a sane token, otherwise a new random one.
enum RequestID {
    /// Longest incoming id that is kept.
    static let maximumLength = 128

    static func make(incoming: String?) -> String {
        if let incoming, Self.isAcceptable(incoming) {
            return incoming
        }
        return Self.generate()
    }

    /// 128 random bits as 32 hex digits.
    static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        let hex = String(high, radix: 16)
        let lowHex = String(low, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex + String(repeating: "0", count: 16 - lowHex.count)
            + lowHex
    }

    /// Visible ASCII without quotes or backslashes, so the id can go into logs and JSON unchanged.
    static func isAcceptable(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= Self.maximumLength
            && id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }
}
