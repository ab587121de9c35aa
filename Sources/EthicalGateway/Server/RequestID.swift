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
        let digits = Array("0123456789abcdef".utf8)
        // One allocation: the 32 hex digits are written straight into the string's storage.
        return String(unsafeUninitializedCapacity: 32) { buffer in
            for index in 0..<16 {
                let shift = UInt64(60 - 4 * index)
                buffer[index] = digits[Int((high >> shift) & 0xF)]
                buffer[16 + index] = digits[Int((low >> shift) & 0xF)]
            }
            return 32
        }
    }

    /// Visible ASCII without quotes or backslashes, so the id can go into logs and JSON unchanged.
    static func isAcceptable(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= Self.maximumLength
            && id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }
}
