import Foundation
import Testing

@testable import EthicalGateway

/// Base64url as JWS uses it: no padding, and one spelling per byte string (RFC 4648 3.5).
@Suite("Base64url decoding")
struct Base64URLTests {
    @Test("a last character with unused bits set is refused; the canonical spelling decodes")
    func canonicalOnly() {
        #expect(Base64URL.decode("QQ") == Data("A".utf8))
        #expect(Base64URL.decode("QUI") == Data("AB".utf8))
        #expect(Base64URL.decode("QUJD") == Data("ABC".utf8))
        for respelt in ["QR", "QZ", "Qf", "QUJ", "QUL"] {
            #expect(Base64URL.decode(Substring(respelt)) == nil, "\(respelt)")
        }
        #expect(Base64URL.decode("Q") == nil)
        #expect(Base64URL.decode("QQ==") == nil)
        #expect(Base64URL.decode("Q+") == nil)
    }

    @Test("a respelt secret (k) is refused with its canonical spelling named; a short one with its length")
    func secretErrors() throws {
        #expect(Base64URL.canonicalLastCharacter(of: "QR") == "Q")
        #expect(Base64URL.canonicalLastCharacter(of: "QUL") == "QUI".last)
        #expect(Base64URL.canonicalLastCharacter(of: "QQ") == nil, "already canonical")
        #expect(Base64URL.canonicalLastCharacter(of: "Q+") == nil, "not the alphabet")
        let canonical = Base64URL.encode(Data((0..<32).map { UInt8($0) }))
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let last = try #require(canonical.last)
        // 32 bytes are 43 characters: the last one's 2 low bits are unused.
        let respeltLast = alphabet[try #require(alphabet.firstIndex(of: last)) | 1]
        func skipped(_ k: String) throws -> [String] {
            let jwk: JSONValue = .object(["kty": .string("oct"), "kid": .string("h"), "k": .string(k)])
            return try KeySet(jwks: [jwk], allowed: [.hs256], allowSecrets: true).skipped
        }
        #expect(try skipped(canonical).isEmpty)
        let respelt = try skipped(String(canonical.dropLast()) + String(respeltLast))
        #expect(respelt.first?.contains("the same secret is spelt ending in \"\(last)\"") == true, "\(respelt)")
        let short = try skipped(Base64URL.encode(Data(repeating: 1, count: 16)))
        #expect(short.first?.contains("is 16 bytes; a secret must be at least 32 bytes") == true, "\(short)")
    }

    @Test("a token whose signature is respelt in its unused bits is not a token")
    func respeltSignature() async throws {
        let lab = try await TokenLab.shared()
        let token = try await lab.mint(key: "rsa", alg: "RS256", claims: TokenLab.claims())
        #expect((try? CompactToken(token, maxBytes: 8192)) != nil)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let signatureLength = token.split(separator: ".")[2].count
        let unused = signatureLength % 4 == 2 ? 0x0F : 0x03
        let last = try #require(alphabet.firstIndex(of: token.last!))
        #expect(last & unused == 0, "the minted spelling is canonical")
        let respelt = String(token.dropLast()) + String(alphabet[last | 1])
        #expect((try? CompactToken(respelt, maxBytes: 8192)) == nil)
    }
}
