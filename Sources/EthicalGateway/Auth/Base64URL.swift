import Foundation

/// Strict base64url (RFC 4648 §5) without padding, as JWS compact serialization uses it.
enum Base64URL {
    /// The decoded bytes, or `nil` when `text` has characters outside the alphabet, padding, an
    /// impossible length, or a last character whose unused low bits are not zero (RFC 4648 3.5:
    /// otherwise 4 or 16 spellings decode to the same bytes, and a token's signature could be
    /// respelt into a token a list of revoked tokens does not know).
    static func decode(_ text: Substring) -> Data? {
        let remainder = text.utf8.count % 4
        guard remainder != 1 else { return nil }
        if remainder != 0, let last = text.utf8.last, let value = Self.sextet(last) {
            let unusedBits: UInt8 = remainder == 2 ? 0x0F : 0x03
            guard value & unusedBits == 0 else { return nil }
        }
        var base64 = ""
        base64.reserveCapacity(text.utf8.count + 3)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                base64.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "-"): base64.append("+")
            case UInt8(ascii: "_"): base64.append("/")
            default: return nil
            }
        }
        base64.append(String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4))
        return Data(base64Encoded: base64)
    }

    /// For text that ``decode(_:)`` refuses only because its last character sets unused bits:
    /// that character with the bits cleared (the canonical spelling's last character), so an
    /// error can say what to write instead. `nil` for anything else.
    static func canonicalLastCharacter(of text: Substring) -> Character? {
        let remainder = text.utf8.count % 4
        guard remainder == 2 || remainder == 3, let last = text.utf8.last, let value = Self.sextet(last) else {
            return nil
        }
        let cleared = value & (remainder == 2 ? 0x30 : 0x3C)
        guard cleared != value, Self.decode(text.dropLast() + String(Self.character(cleared))) != nil else {
            return nil
        }
        return Self.character(cleared)
    }

    private static func character(_ sextet: UInt8) -> Character {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        return Character(Unicode.Scalar(alphabet[Int(sextet)]))
    }

    /// The 6-bit value of a base64url character, or `nil` outside the alphabet.
    private static func sextet(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): return 62
        case UInt8(ascii: "_"): return 63
        default: return nil
        }
    }

    static func encode(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
