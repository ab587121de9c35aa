import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// What a relay client can make the gateway hold, and for how long: per-channel engine state,
/// sockets of clients that stopped reading.
@Suite("Fluxer Relay: bounded resources and failures", .timeLimit(.minutes(2)))
struct RelayResourceTests {
    static let stateRelay = """
        "allowAnonymous": true, "commandsPerSecond": 100000, "commandBurst": 100000,
        "namespaces": {
          "default": { "subscribe": "any" },
          "chat": { "subscribe": "authenticated", "presence": true, "joinLeave": true, "historySize": 10 },
          "feed": { "subscribe": "any", "historySize": 3 },
          "brief": { "subscribe": "any", "historySize": 3, "historyTTLSeconds": 1 }
        }
        """

    /// The engine's channel count from the relay's stats.
    static func engineChannels(_ stats: [String: Any]) -> Int? {
        (stats["engine"] as? [String: Any])?["channels"] as? Int
    }

    @Test("history, subscribe and unsubscribe on many channels leave no engine state; history stays until its TTL")
    func channelStateIsReleased() async throws {
        try await RelayGateway.with(relay: Self.stateRelay) { gateway in
            let baseline = try #require(Self.engineChannels(try await RelayGateway.stats(gateway)))
            let (anonymous, reply) = try await RelayGateway.connect(gateway, token: nil)
            #expect(result(reply, "connect") != nil, "\(reply)")
            let (member, _) = try await RelayGateway.connect(gateway, token: try RelayTokens.mint("mia"))
            for n in 0..<100 {
                let history = try await anonymous.call("history", ["channel": "feed:h-\(n)", "limit": 10])
                #expect((result(history, "history")?["publications"] as? [Any])?.isEmpty ?? true, "\(history)")
                #expect(result(try await anonymous.call("subscribe", ["channel": "feed:s-\(n)"]), "subscribe") != nil)
                _ = try await anonymous.call("unsubscribe", ["channel": "feed:s-\(n)"])
                #expect(result(try await anonymous.call("subscribe", ["channel": "plain-\(n)"]), "subscribe") != nil)
                _ = try await anonymous.call("unsubscribe", ["channel": "plain-\(n)"])
                #expect(result(try await member.call("subscribe", ["channel": "chat:p-\(n)"]), "subscribe") != nil)
                _ = try await member.call("unsubscribe", ["channel": "chat:p-\(n)"])
                if n < 20 { _ = try await RelayGateway.api(gateway, "history", ["channel": "feed:api-\(n)"]) }
            }
            #expect(Self.engineChannels(try await RelayGateway.stats(gateway)) == baseline)

            // A subscribed channel is held while subscribed, with the position it reported.
            let subscribed = try #require(
                result(try await member.call("subscribe", ["channel": "chat:kept"]), "subscribe")
            )
            #expect(Self.engineChannels(try await RelayGateway.stats(gateway)) == baseline + 1)
            let published = try await RelayGateway.api(gateway, "publish", ["channel": "chat:kept", "data": 1])
            #expect((published["result"] as? [String: Any])?["epoch"] as? String == subscribed["epoch"] as? String)
            _ = try await member.nextPublication()
            _ = try await member.call("unsubscribe", ["channel": "chat:kept"])

            // With history and no subscribers: kept until the TTL (300 s in chat, 1 s in brief).
            _ = try await RelayGateway.api(gateway, "publish", ["channel": "brief:b", "data": 1])
            let kept = try await anonymous.call("history", ["channel": "brief:b", "limit": 10])
            #expect((result(kept, "history")?["publications"] as? [Any])?.count == 1, "\(kept)")
            #expect(Self.engineChannels(try await RelayGateway.stats(gateway)) == baseline + 2)
            let expired = try await RelayGateway.waitForStats(gateway) { Self.engineChannels($0) == baseline + 1 }
            #expect(Self.engineChannels(expired) == baseline + 1, "brief:b outlived its 1 s TTL")
            let chat = try await member.call("history", ["channel": "chat:kept", "limit": 10])
            #expect((result(chat, "history")?["publications"] as? [Any])?.count == 1, "\(chat)")
            anonymous.close()
            member.close()
        }
    }

    @Test("a slow consumer's socket is closed a second after its close frame, though the peer never reads it")
    func slowConsumerSocketIsClosed() async throws {
        let relay = """
            "maxQueuedBytes": 65536, "sendBufferBytes": 8192, "commandsPerSecond": 100000, "commandBurst": 100000,
            "pingIntervalSeconds": 600,
            """ + RelayGateway.namespaces
        try await RelayGateway.with(relay: relay) { gateway in
            let (stalled, _) = try await RelayGateway.connect(
                gateway,
                token: try RelayTokens.mint("stella"),
                receiveBufferBytes: 4096
            )
            _ = try await stalled.call("subscribe", ["channel": "strict:flood"])
            try await stalled.setReading(false)
            let (publisher, _) = try await RelayGateway.connect(gateway, token: try RelayTokens.mint("pete"))
            // 800 KB for a reader whose buffers hold well under 200 KB.
            let payload = String(repeating: "p", count: 4000)
            for n in 1...200 {
                publisher.send(#"{"publish":{"channel":"strict:flood","data":{"n":\#(n),"p":"\#(payload)"}}}"#)
            }
            let disconnected = try await RelayGateway.waitForStats(gateway) {
                $0["slowDisconnects"] as? Int ?? 0 >= 1
            }
            #expect(disconnected["slowDisconnects"] as? Int == 1)
            // The stalled client still reads nothing; its socket goes anyway.
            let released = try await RelayGateway.waitForStats(gateway, seconds: 6) {
                $0["closingConnections"] as? Int == 0
            }
            #expect(released["closingConnections"] as? Int == 0, "\(released)")
            #expect(released["connections"] as? Int == 1)
            stalled.close()
            publisher.close()
        }
    }

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
