import NIOPosix

/// Request ids: the client's `X-Request-ID` when it is a sane token, otherwise a new random one.
enum RequestID {
    private static let generators = ThreadSpecificVariable<RequestIDGenerator>()

    /// Longest incoming id that is kept.
    static let maximumLength = 128

    static func make(incoming: String?) -> String {
        if let incoming, Self.isAcceptable(incoming) {
            return incoming
        }
        return Self.generate()
    }

    /// 64 random bits from this thread's generator (a non-cryptographic PRNG seeded from the
    /// system's; for ids, not secrets).
    static func random64() -> UInt64 {
        Self.generator().next()
    }

    /// This thread's generator, made on first use.
    private static func generator() -> RequestIDGenerator {
        if let existing = Self.generators.currentValue { return existing }
        let generator = RequestIDGenerator()
        Self.generators.currentValue = generator
        return generator
    }

    /// 128 pseudo-random bits as 32 hex digits. Ids are for correlating logs, not secrets: they
    /// come from a fast generator per thread, seeded once from the system's random source,
    /// instead of two `getrandom` system calls per request. One thread-local lookup and one
    /// allocation (the string's own storage, written in place) per id.
    static func generate() -> String {
        let generator = Self.generator()
        let high = generator.next()
        let low = generator.next()
        @inline(__always) func digit(_ value: UInt64) -> UInt8 {
            let nibble = UInt8(truncatingIfNeeded: value & 0xF)
            return nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") - 10 + nibble
        }
        return String(unsafeUninitializedCapacity: 32) { buffer in
            for index in 0..<16 {
                let shift = UInt64(60 - 4 * index)
                buffer[index] = digit(high >> shift)
                buffer[16 + index] = digit(low >> shift)
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

/// xorshift128+, one per thread (never shared, hence `@unchecked Sendable`).
private final class RequestIDGenerator: @unchecked Sendable {
    private var state0: UInt64
    private var state1: UInt64

    init() {
        var seed = SystemRandomNumberGenerator()
        self.state0 = seed.next() | 1
        self.state1 = seed.next()
    }

    func next() -> UInt64 {
        var s1 = self.state0
        let s0 = self.state1
        self.state0 = s0
        s1 ^= s1 << 23
        self.state1 = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26)
        return self.state1 &+ s0
    }
}
