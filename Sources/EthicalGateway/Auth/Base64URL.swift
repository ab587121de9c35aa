import Foundation

/// Strict base64url (RFC 4648 §5) without padding, as JWS compact serialization uses it.
enum Base64URL {
    /// The decoded bytes, or `nil` when `text` has characters outside the alphabet, padding, or
    /// an impossible length.
    static func decode(_ text: Substring) -> Data? {
        guard text.utf8.count % 4 != 1 else { return nil }
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

    static func encode(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
