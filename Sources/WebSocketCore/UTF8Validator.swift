/// Validates UTF-8 a piece at a time, so a text message split over frames is refused as soon as
/// a byte cannot continue any valid sequence (RFC 6455 §8.1 "fail fast"), not only at its end.
///
/// Follows the Unicode Standard's table of well-formed byte sequences (Table 3-7): no overlong
/// forms, no surrogates (U+D800…U+DFFF), nothing past U+10FFFF.
///
/// ```swift
/// var validator = UTF8Validator()
/// guard validator.feed(firstFragment) else { /* close 1007 */ }
/// guard validator.feed(lastFragment), validator.isComplete else { /* close 1007 */ }
/// ```
public struct UTF8Validator: Sendable {
    /// Continuation bytes still expected in the current sequence.
    private var pending: UInt8 = 0
    /// The range the next byte must fall in (the second byte of E0, ED, F0, F4 sequences is narrower).
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF

    public init() {}

    /// Whether everything fed so far ends on a whole character.
    public var isComplete: Bool { self.pending == 0 }

    /// Feeds more bytes; false as soon as they cannot be (part of) valid UTF-8.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        let count = bytes.count
        while index < count {
            if self.pending == 0 {
                // ASCII runs, eight bytes at a time while aligned reads are possible.
                while index + 8 <= count,
                    bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0
                {
                    index += 8
                }
                guard index < count else { return true }
                let byte = bytes[index]
                index += 1
                switch byte {
                case 0x00...0x7F: continue
                case 0xC2...0xDF: self.expect(1, 0x80, 0xBF)
                case 0xE0: self.expect(2, 0xA0, 0xBF)
                case 0xE1...0xEC, 0xEE...0xEF: self.expect(2, 0x80, 0xBF)
                case 0xED: self.expect(2, 0x80, 0x9F)
                case 0xF0: self.expect(3, 0x90, 0xBF)
                case 0xF1...0xF3: self.expect(3, 0x80, 0xBF)
                case 0xF4: self.expect(3, 0x80, 0x8F)
                default: return false
                }
            } else {
                let byte = bytes[index]
                index += 1
                guard byte >= self.lower && byte <= self.upper else { return false }
                self.pending -= 1
                self.lower = 0x80
                self.upper = 0xBF
            }
        }
        return true
    }

    private mutating func expect(_ count: UInt8, _ lower: UInt8, _ upper: UInt8) {
        self.pending = count
        self.lower = lower
        self.upper = upper
    }
}
