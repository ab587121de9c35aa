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
