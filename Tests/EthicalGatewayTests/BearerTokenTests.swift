import Foundation
import NIOHTTP1
import Testing

@testable import EthicalGateway

@Suite("Bearer token from the Authorization header")
struct BearerTokenTests {
    @Test("the scheme in any case, spaces and tabs around the token, other schemes ignored")
    func parsing() {
        #expect(RoutePolicy.bearerToken(in: "Bearer abc.def.ghi") == "abc.def.ghi")
        #expect(RoutePolicy.bearerToken(in: "bEaReR abc") == "abc")
        #expect(RoutePolicy.bearerToken(in: "  Bearer \t abc \t ") == "abc")
        #expect(RoutePolicy.bearerToken(in: "Bearer    ") == "")
        #expect(RoutePolicy.bearerToken(in: "Bearer") == nil)
        #expect(RoutePolicy.bearerToken(in: "Bearer\tabc") == nil)
        #expect(RoutePolicy.bearerToken(in: "Basic YWxpY2U6c2VjcmV0") == nil)
        #expect(RoutePolicy.bearerToken(in: "Bearerx abc") == nil)
        #expect(RoutePolicy.bearerToken(in: "Bearer tök") == "tök")
    }

    @Test("one field is read directly; two fields or a comma-separated list are refused")
    func fields() throws {
        let policy = RoutePolicy(try decodeAuth(#"{ "issuers": ["local"] }"#))
        #expect(try policy.token(in: ["Authorization": "Bearer abc"]).get() == "abc")
        #expect(try policy.token(in: [:]).get() == nil)
        #expect(throws: TokenRefusal.self) { try policy.token(in: ["Authorization": "Bearer a, Bearer b"]).get() }
        #expect(throws: TokenRefusal.self) {
            try policy.token(in: HTTPHeaders([("Authorization", "Bearer a"), ("Authorization", "Bearer b")])).get()
        }
        #expect(throws: TokenRefusal.self) { try policy.token(in: ["Authorization": "Bearer  "]).get() }
    }

    private func decodeAuth(_ json: String) throws -> RouteAuthConfiguration {
        let configuration = try ConfigLoader.load(
            data: Data(
                """
                { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
                  "issuers": { "local": { "issuer": "https://issuer.test", "audiences": ["api"],
                                          "keys": [ { "kty": "oct", "kid": "k", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0" } ] } },
                  "routes": [ { "backend": "ok", "auth": \(json) } ],
                  "backends": { "ok": { "plugin": "respond", "config": {} } } }
                """.utf8
            )
        )
        return try #require(configuration.routes.first?.auth)
    }
}
