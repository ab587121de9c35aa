import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// What a relay client can make the gateway hold, and for how long; how it is told no.
@Suite("Fluxer Relay: bounded resources and failures", .timeLimit(.minutes(2)))
struct RelayResourceTests {
    @Test("an API token without the API scope gets 403 insufficient_scope; a refused one 401 invalid_token")
    func apiTokenScope() async throws {
        // Tokens verified by the relay itself (the route has no auth)…
        try await LiveGateway.with(
            config: RelayGateway.config(relay: RelayGateway.namespaces, routeAuth: false),
            files: ["api.key": RelayGateway.apiKey],
            registry: gatewayRegistry
        ) { gateway in
            try await Self.expectScopeAnswers(gateway)
        }
        // …and by the route's auth, which hands the relay the verified identity.
        try await RelayGateway.with { gateway in
            let api = "https://127.0.0.1:\(gateway.port("https"))/relay/api/info"
            let viaQuery = try await Curl.request(
                api + "?token=" + (try RelayTokens.mint("svc")),
                ["-X", "POST", "--data-raw", "{}"]
            )
            #expect(viaQuery.status == 403)
            #expect(viaQuery.header("www-authenticate")?.contains(#"error="insufficient_scope""#) == true)
        }
    }

    static func expectScopeAnswers(_ gateway: LiveGateway) async throws {
        let api = "https://127.0.0.1:\(gateway.port("https"))/relay/api/info"
        func call(_ token: String) async throws -> CurlResponse {
            try await Curl.request(api, ["-X", "POST", "-H", "Authorization: Bearer \(token)", "--data-raw", "{}"])
        }
        let noScope = try await call(try RelayTokens.mint("svc", scopes: ["relay:publish"]))
        #expect(noScope.status == 403)
        let challenge = noScope.header("www-authenticate") ?? ""
        #expect(challenge.contains(#"error="insufficient_scope""#), "\(challenge)")
        #expect(challenge.contains(#"scope="relay:admin""#), "\(challenge)")
        #expect(noScope.bodyText.contains("relay:admin"))

        let token = try RelayTokens.mint("svc", scopes: ["relay:admin"])
        let forged = try await call(String(token.dropLast(4)) + "AAAA")
        #expect(forged.status == 401)
        #expect(forged.header("www-authenticate")?.contains(#"error="invalid_token""#) == true)

        #expect(try await call(token).status == 200)
    }
}
