import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// The Fluxer Relay through the whole gateway over TLS, driven by our own Swift client
/// (`RelayTestClient`): protocol round trips, permissions, recovery, expiry, limits.
@Suite("Fluxer Relay: WebSocket protocol", .timeLimit(.minutes(5)))
struct RelayTests {
    @Test("connect with a token in the connect command or on the upgrade request; anonymous only when allowed")
    func connect() async throws {
        try await RelayGateway.with { gateway in
            let token = try RelayTokens.mint("alice", ttl: 600)
            let (client, reply) = try await RelayGateway.connect(gateway, token: token)
            let connect = try #require(result(reply, "connect"), "\(reply)")
            #expect((connect["client"] as? String)?.count == 36)
            #expect(connect["ping"] as? Int == 25)
            #expect(connect["pong"] as? Bool == true)
            #expect(connect["expires"] as? Bool == true)
            #expect((500...600).contains(connect["ttl"] as? Int ?? 0))
            client.close()

            // The route's auth verified the query token; connect carries none.
            let (viaQuery, queryReply) = try await RelayGateway.connect(gateway, token: token, inQuery: true)
            #expect(result(queryReply, "connect")?["expires"] as? Bool == true)
            viaQuery.close()

            // No token and anonymous connections not allowed: 101, then closed with 3500.
            let (anonymous, anonymousReply) = try await RelayGateway.connect(gateway, token: nil)
            #expect(errorCode(anonymousReply) == 101)
            #expect(try await anonymous.waitForClose().code == 3500)

            // A forged token: closed with 3500 and the reason.
            let forged = String(token.dropLast(4)) + "AAAA"
            let (bad, badReply) = try await RelayGateway.connect(gateway, token: forged)
            #expect(errorCode(badReply) == 101)
            let closed = try await bad.waitForClose()
            #expect(closed.code == 3500)
            #expect(closed.reason.contains("invalid token"))

            // An expired token: 109, so the client fetches a new one; the connection stays.
            let expired = try RelayTokens.mint("alice", ttl: -120)
            let (late, lateReply) = try await RelayGateway.connect(gateway, token: expired)
            #expect(errorCode(lateReply) == 109)
            let retry = try await late.call("connect", ["token": token])
            #expect(result(retry, "connect") != nil)
            late.close()
        }
    }

    @Test("subscribe, publish over the HTTP API and over the WebSocket, offsets increase, presence and join/leave")
    func publishAndSubscribe() async throws {
        try await RelayGateway.with { gateway in
            let (alice, _) = try await RelayGateway.connect(gateway, token: try RelayTokens.mint("alice"))
            let (bob, _) = try await RelayGateway.connect(gateway, token: try RelayTokens.mint("bob"))
            let subscribed = try await alice.call("subscribe", ["channel": "chat:room"])
            let position = try #require(result(subscribed, "subscribe"), "\(subscribed)")
            #expect(position["recoverable"] as? Bool == true)
            #expect(position["offset"] as? Int == 0)
            let epoch = try #require(position["epoch"] as? String)

            // Bob joins: Alice sees the join.
            _ = try await bob.call("subscribe", ["channel": "chat:room"])
            let join = try await alice.nextPush()
            #expect(((join["push"] as? [String: Any])?["join"] as? [String: Any]) != nil)

            let published = try await RelayGateway.api(gateway, "publish", ["channel": "chat:room", "data": ["n": 1]])
            #expect((published["result"] as? [String: Any])?["offset"] as? Int == 1)
            #expect((published["result"] as? [String: Any])?["epoch"] as? String == epoch)
            for client in [alice, bob] {
                let publication = try await client.nextPublication()
                #expect(publication["offset"] as? Int == 1)
                #expect((publication["data"] as? [String: Any])?["n"] as? Int == 1)
            }

            // Subscribers may publish in chat; the publication carries who sent it.
            let sent = try await bob.call("publish", ["channel": "chat:room", "data": ["text": "hi"]])
            #expect(result(sent, "publish") != nil, "\(sent)")
            let fromBob = try await alice.nextPublication()
            let info = fromBob["info"] as? [String: Any]
            #expect(info?["user"] as? String == "bob")

            let presence = try await alice.call("presence", ["channel": "chat:room"])
            let clients = (result(presence, "presence")?["presence"] as? [String: Any]) ?? [:]
            #expect(clients.count == 2)
            let stats = try await alice.call("presence_stats", ["channel": "chat:room"])
            #expect(result(stats, "presence_stats")?["num_users"] as? Int == 2)

            let history = try await alice.call("history", ["channel": "chat:room", "limit": 10])
            let publications = (result(history, "history")?["publications"] as? [[String: Any]]) ?? []
            #expect(publications.compactMap { $0["offset"] as? Int } == [1, 2])

            // Bob leaves: Alice sees it.
            _ = try await bob.call("unsubscribe", ["channel": "chat:room"])
            // A server ping (`{}`) may come first when the test has run long (a loaded machine).
            var leave = try await alice.nextPush()
            for _ in 0..<5 where leave.isEmpty { leave = try await alice.nextPush() }
            #expect(((leave["push"] as? [String: Any])?["leave"] as? [String: Any]) != nil, "\(leave)")

            alice.close()
            bob.close()
        }
    }

    @Test("permissions: namespaces, the channels claim, user channels, the publish scope")
    func permissions() async throws {
        try await RelayGateway.with { gateway in
            let (alice, _) = try await RelayGateway.connect(
                gateway,
                token: try RelayTokens.mint("alice", channels: ["private:alice-*", "private:team"])
            )
            #expect(result(try await alice.call("subscribe", ["channel": "private:team"]), "subscribe") != nil)
            #expect(result(try await alice.call("subscribe", ["channel": "private:alice-1"]), "subscribe") != nil)
            #expect(errorCode(try await alice.call("subscribe", ["channel": "private:other"])) == 103)
            // User-limited channels: the user's own only.
            #expect(result(try await alice.call("subscribe", ["channel": "inbox#alice"]), "subscribe") != nil)
            #expect(errorCode(try await alice.call("subscribe", ["channel": "inbox#bob"])) == 103)
            // Unknown namespace, already subscribed.
            #expect(errorCode(try await alice.call("subscribe", ["channel": "nowhere:x"])) == 102)
            #expect(errorCode(try await alice.call("subscribe", ["channel": "private:team"])) == 105)
            // Publishing: none in default, scope needed in feed.
            #expect(errorCode(try await alice.call("publish", ["channel": "inbox#alice", "data": 1])) == 103)
            #expect(errorCode(try await alice.call("publish", ["channel": "feed:x", "data": 1])) == 103)
            let (editor, _) = try await RelayGateway.connect(
                gateway,
                token: try RelayTokens.mint("editor", scopes: ["relay:publish"])
            )
            #expect(result(try await editor.call("publish", ["channel": "feed:x", "data": 1]), "publish") != nil)
            // Presence is off outside chat.
            #expect(errorCode(try await alice.call("presence", ["channel": "private:team"])) == 108)
            alice.close()
            editor.close()
        }
    }

    @Test(
        "recovery after a dropped connection: missed publications in order, none twice; the epoch and history-size cases"
    )
    func recovery() async throws {
        try await RelayGateway.with { gateway in
            let token = try RelayTokens.mint("alice")
            let (first, _) = try await RelayGateway.connect(gateway, token: token)
            let subscribed = try #require(result(try await first.call("subscribe", ["channel": "chat:r"]), "subscribe"))
            let epoch = try #require(subscribed["epoch"] as? String)
            _ = try await RelayGateway.api(gateway, "publish", ["channel": "chat:r", "data": ["n": 1]])
            #expect(try await first.nextPublication()["offset"] as? Int == 1)
            first.close()

            for n in 2...4 {
                _ = try await RelayGateway.api(gateway, "publish", ["channel": "chat:r", "data": ["n": n]])
            }
            let (second, _) = try await RelayGateway.connect(gateway, token: token)
            let recovered = try #require(
                result(
                    try await second.call(
                        "subscribe",
                        ["channel": "chat:r", "recover": true, "offset": 1, "epoch": epoch]
                    ),
                    "subscribe"
                )
            )
            #expect(recovered["recovered"] as? Bool == true)
            #expect(recovered["was_recovering"] as? Bool == true)
            let missed = (recovered["publications"] as? [[String: Any]]) ?? []
            #expect(missed.compactMap { ($0["data"] as? [String: Any])?["n"] as? Int } == [2, 3, 4])
            #expect(recovered["offset"] as? Int == 4)
            _ = try await RelayGateway.api(gateway, "publish", ["channel": "chat:r", "data": ["n": 5]])
            #expect(try await second.nextPublication()["offset"] as? Int == 5)
            #expect(second.takePushes().allSatisfy { ($0["push"] as? [String: Any])?["pub"] == nil })

            // A different epoch (the stream was lost, e.g. a restart): not recovered.
            let (third, _) = try await RelayGateway.connect(gateway, token: token)
            let wrongEpoch = try #require(
                result(
                    try await third.call(
                        "subscribe",
                        ["channel": "chat:r", "recover": true, "offset": 1, "epoch": "other"]
                    ),
                    "subscribe"
                )
            )
            #expect(wrongEpoch["recovered"] as? Bool == false)
            #expect(wrongEpoch["publications"] == nil)
            #expect(wrongEpoch["epoch"] as? String == epoch)

            // feed keeps 3 publications: 5 missed cannot be recovered.
            let (reader, _) = try await RelayGateway.connect(gateway, token: token)
            let feed = try #require(result(try await reader.call("subscribe", ["channel": "feed:f"]), "subscribe"))
            for n in 1...5 {
                _ = try await RelayGateway.api(gateway, "publish", ["channel": "feed:f", "data": ["n": n]])
            }
            let (later, _) = try await RelayGateway.connect(gateway, token: token)
            let gap = try #require(
                result(
                    try await later.call(
                        "subscribe",
                        [
                            "channel": "feed:f", "recover": true, "offset": feed["offset"] as? Int ?? 0,
                            "epoch": feed["epoch"] as? String ?? "",
                        ]
                    ),
                    "subscribe"
                )
            )
            #expect(gap["recovered"] as? Bool == false)
            for client in [second, third, reader, later] { client.close() }
        }
    }

    @Test("a connection whose token expires is closed with 3005; refresh with a new token for the same user extends it")
    func tokenExpiry() async throws {
        try await RelayGateway.with(relay: #""pongTimeoutSeconds": 1, "#.appending(RelayGateway.namespaces)) {
            gateway in
            let (expiring, reply) = try await RelayGateway.connect(
                gateway,
                token: try RelayTokens.mint("alice", ttl: 3)
            )
            #expect(result(reply, "connect")?["ttl"] as? Int ?? 0 <= 3)
            // Bob's first token would end the connection 21 s from now (20 s + the 1 s grace): room
            // for the connect and the refresh with the whole suite loading two cores (8 s was not).
            let bobExpiry = Date().timeIntervalSince1970 + 20
            let (refreshed, _) = try await RelayGateway.connect(gateway, token: try RelayTokens.mint("bob", ttl: 20))
            let renewal = try await refreshed.call("refresh", ["token": try RelayTokens.mint("bob", ttl: 60)])
            #expect(result(renewal, "refresh")?["expires"] as? Bool == true, "\(renewal)")
            // Past the first token's 20 s: the new token's expiry counts (60 s at minting; a
            // loaded full run once took 13 s from minting to the reply).
            #expect((21...60).contains(result(renewal, "refresh")?["ttl"] as? Int ?? 0))
            let other = try await refreshed.call("refresh", ["token": try RelayTokens.mint("mallory", ttl: 60)])
            #expect(errorCode(other) == 103)

            let closed = try await expiring.waitForClose(timeout: .seconds(10))
            #expect(closed.code == 3005)
            // Nothing to poll for: wait until Bob's first token would have ended the connection.
            try await Task.sleep(for: .seconds(max(0, bobExpiry + 2 - Date().timeIntervalSince1970)))
            // The refreshed connection outlives the first token.
            let ping = try await refreshed.call("presence_stats", ["channel": "chat:x"])
            #expect(result(ping, "presence_stats") != nil, "\(ping)")
            refreshed.close()
        }
    }

    @Test("server pings; a client that never answers is closed with 3012 (no pong)")
    func pings() async throws {
        try await RelayGateway.with(relay: #""pingIntervalSeconds": 1, "pongTimeoutSeconds": 3"#) { gateway in
            let (client, reply) = try await RelayGateway.connect(gateway, token: try RelayTokens.mint("alice"))
            #expect(result(reply, "connect")?["ping"] as? Int == 1)
            let ping = try await client.nextPush(timeout: .seconds(15))
            #expect(ping.isEmpty)
            #expect(try await client.waitForClose(timeout: .seconds(20)).code == 3012)

            // Answering every ping keeps the connection.
            let (polite, _) = try await RelayGateway.connect(gateway, token: try RelayTokens.mint("bob"))
            for _ in 0..<3 {
                #expect(try await polite.nextPush(timeout: .seconds(15)).isEmpty)
                polite.send("{}")
            }
            #expect(polite.closure == nil)
            polite.close()
        }
    }

    @Test("limits: message size (1009), command rate (111), subscriptions (106), connections per user (3504)")
    func limits() async throws {
        let relay = """
            "maxMessageBytes": 2048, "commandsPerSecond": 1, "commandBurst": 5,
            "maxSubscriptionsPerConnection": 2, "maxConnectionsPerUser": 2,
            """ + RelayGateway.namespaces
        try await RelayGateway.with(relay: relay) { gateway in
            let token = try RelayTokens.mint("alice")
            let (client, _) = try await RelayGateway.connect(gateway, token: token)
            #expect(result(try await client.call("subscribe", ["channel": "a"]), "subscribe") != nil)
            #expect(result(try await client.call("subscribe", ["channel": "b"]), "subscribe") != nil)
            #expect(errorCode(try await client.call("subscribe", ["channel": "c"])) == 106)
            // Ten commands in one frame: what is left of the burst of five passes (108: no history
            // here), the rest get 111 (a little refill on a slow machine is allowed for).
            client.send((1...10).map { #"{"id":\#(100 + $0),"history":{"channel":"a"}}"# }.joined(separator: "\n"))
            var codes: [Int] = []
            for id in 101...110 { codes.append(errorCode(try await client.reply(to: id)) ?? 0) }
            #expect(codes.filter { $0 == 111 }.count >= 5, "\(codes)")
            #expect(codes.allSatisfy { $0 == 111 || $0 == 108 }, "\(codes)")

            let (second, _) = try await RelayGateway.connect(gateway, token: token)
            let third = try await RelayTestClient.connect(port: gateway.port("https"))
            third.send(#"{"id":1,"connect":{"token":"\#(token)"}}"#)
            #expect(try await third.waitForClose().code == 3504)
            second.close()

            client.send(#"{"id":77,"publish":{"channel":"a","data":""# + String(repeating: "x", count: 4096) + #""}}"#)
            #expect(try await client.waitForClose().code == 1009)
        }
    }

    @Test("bad input: malformed JSON and binary frames close with 3501 and say why; unknown methods and rpc get 104")
    func badInput() async throws {
        try await RelayGateway.with { gateway in
            let token = try RelayTokens.mint("alice")
            let (client, _) = try await RelayGateway.connect(gateway, token: token)
            #expect(errorCode(try await client.call("rpc", ["method": "x"])) == 104)
            #expect(errorCode(try await client.call("teleport", [:])) == 104)
            #expect(errorCode(try await client.call("subscribe", ["channel": 5])) == 107)
            client.send(#"{"id":1,"subscribe":{"channel":"x""#)
            let closed = try await client.waitForClose()
            #expect(closed.code == 3501)
            #expect(closed.reason.contains("invalid JSON"))

            // Commands before connect.
            let early = try await RelayTestClient.connect(port: gateway.port("https"))
            early.send(#"{"id":1,"subscribe":{"channel":"x"}}"#)
            #expect(try await early.waitForClose().code == 3501)

            // Not a WebSocket handshake at all: a problem document, no upgrade. Over HTTP/2 a
            // 426 cannot name the protocol to switch to (no Upgrade field there): 400 says to
            // use extended CONNECT.
            let url = "https://127.0.0.1:\(gateway.port("https"))/relay/connection/websocket"
            let plain = try await Curl.request(url, ["--http1.1"])
            #expect(plain.status == 426)
            let plainHTTP2 = try await Curl.request(url, ["--http2"])
            #expect(plainHTTP2.httpVersion == "2")
            #expect(plainHTTP2.status == 400)
            #expect(plainHTTP2.bodyText.contains("extended CONNECT"))
        }
    }

    @Test(
        "a slow reader does not delay a fast one; it loses queued publications and recovers them, or is closed with 3008"
    )
    func slowConsumer() async throws {
        let relay = #"""
            "maxQueuedBytes": 1048576, "sendBufferBytes": 262144, "commandsPerSecond": 100000, "commandBurst": 100000,
            "pingIntervalSeconds": 600,
            """# + " "
            + RelayGateway.namespaces
        try await RelayGateway.with(relay: relay) { gateway in
            let (fast, _) = try await RelayGateway.connect(gateway, token: try RelayTokens.mint("fast"))
            let (slow, _) = try await RelayGateway.connect(
                gateway,
                token: try RelayTokens.mint("slow"),
                receiveBufferBytes: 4096
            )
            let (strict, _) = try await RelayGateway.connect(
                gateway,
                token: try RelayTokens.mint("strict"),
                receiveBufferBytes: 4096
            )
            let (publisher, _) = try await RelayGateway.connect(gateway, token: try RelayTokens.mint("publisher"))
            let fastEpoch = try #require(
                result(try await fast.call("subscribe", ["channel": "slow:ticks"]), "subscribe")?["epoch"] as? String
            )
            _ = try await slow.call("subscribe", ["channel": "slow:ticks"])
            _ = try await strict.call("subscribe", ["channel": "strict:ticks"])
            try await slow.setReading(false)
            try await strict.setReading(false)

            let count = 1500
            // 3 MB per stalled reader, more than its buffers hold (256 KB in the kernel, 1 MB queued).
            let payload = String(repeating: "p", count: 2000)
            let started = ContinuousClock.now
            // Paced (50 per 20 ms per channel), so the fast reader keeps up and the stalled ones do not.
            let publishing = Task {
                for n in 1...count {
                    let sentAt = Date().timeIntervalSince1970
                    publisher.send(
                        #"{"publish":{"channel":"slow:ticks","data":{"n":\#(n),"t":\#(sentAt),"p":"\#(payload)"}}}"#
                    )
                    publisher.send(#"{"publish":{"channel":"strict:ticks","data":{"n":\#(n),"p":"\#(payload)"}}}"#)
                    if n % 50 == 0 { try await Task.sleep(for: .milliseconds(20)) }
                }
            }
            var received: [Int] = []
            var lags: [Double] = []
            var recoveries = 0
            // The fast reader behaves like a real client: should even it fall behind (a loaded
            // machine), it is told to resubscribe (2500) and recovers, so it still gets everything.
            func take(_ publication: [String: Any]) {
                guard let data = publication["data"] as? [String: Any], let n = data["n"] as? Int,
                    let sentAt = data["t"] as? Double
                else { return }
                received.append(n)
                lags.append(Date().timeIntervalSince1970 - sentAt)
            }
            while received.count < count {
                let push = try #require(try await fast.nextPush(timeout: .seconds(60))["push"] as? [String: Any])
                if let publication = push["pub"] as? [String: Any] {
                    take(publication)
                } else if (push["unsubscribe"] as? [String: Any])?["code"] as? Int == 2500 {
                    recoveries += 1
                    let recovered = try #require(
                        result(
                            try await fast.call(
                                "subscribe",
                                [
                                    "channel": "slow:ticks", "recover": true, "offset": received.count,
                                    "epoch": fastEpoch,
                                ]
                            ),
                            "subscribe"
                        )
                    )
                    #expect(recovered["recovered"] as? Bool == true)
                    for publication in recovered["publications"] as? [[String: Any]] ?? [] { take(publication) }
                }
            }
            try await publishing.value
            let elapsed = ContinuousClock.now - started
            #expect(received == Array(1...count))
            lags.sort()
            let p50 = lags[lags.count / 2] * 1000
            let p99 = lags[lags.count * 99 / 100] * 1000
            print(
                "relay slow-consumer test: fast reader got \(count) publications of 2 KB in \(elapsed) beside two stalled"
                    + " readers (recovering \(recoveries) times); publish-to-receive lag p50 \(Int(p50)) ms, p99 \(Int(p99)) ms, max \(Int(lags.last! * 1000)) ms"
            )
            // No timing assertion (speed is for the benchmarks): the fast reader got every publication
            // while both stalled readers were still paused, so delivery to it never waited for them.

            // The stalled strict reader was closed as slow (counted below): its close frame (3008)
            // waited behind what it did not read, and the socket was closed a second later, so
            // it reads the bytes that had left and then finds the connection dropped.
            try await strict.setReading(true)
            #expect([3008, 1006].contains(try await strict.waitForClose(timeout: .seconds(10)).code))

            // The stalled dropOldest reader got an "insufficient state" unsubscribe and can recover.
            try await slow.setReading(true)
            var unsubscribed = false
            var lastSeen = 0
            while !unsubscribed {
                let push = try await slow.nextPush(timeout: .seconds(20))
                let body = push["push"] as? [String: Any]
                if let code = (body?["unsubscribe"] as? [String: Any])?["code"] as? Int {
                    #expect(code == 2500)
                    unsubscribed = true
                } else if let offset = (body?["pub"] as? [String: Any])?["offset"] as? Int {
                    lastSeen = offset
                }
            }
            let stats = try await Curl.request(
                "https://127.0.0.1:\(gateway.port("https"))/relay/api/stats",
                ["-H", "X-API-Key: \(RelayGateway.apiKey)"]
            )
            let counters = try #require(try JSONSerialization.jsonObject(with: stats.body) as? [String: Any])
            #expect(counters["publicationsDropped"] as? Int ?? 0 > 0)
            #expect(counters["slowDisconnects"] as? Int ?? 0 >= 1)
            let epoch = try #require(
                result(try await publisher.call("history", ["channel": "slow:ticks", "limit": 0]), "history")?["epoch"]
                    as? String
            )
            let recovered = try #require(
                result(
                    try await slow.call(
                        "subscribe",
                        ["channel": "slow:ticks", "recover": true, "offset": lastSeen, "epoch": epoch]
                    ),
                    "subscribe"
                )
            )
            #expect(recovered["recovered"] as? Bool == true)
            let rest = (recovered["publications"] as? [[String: Any]])?.compactMap { $0["offset"] as? Int } ?? []
            #expect(rest == Array((lastSeen + 1)...count).map { $0 })
            for client in [fast, slow, publisher] { client.close() }
        }
    }

    @Test("graceful shutdown tells every client to reconnect (3001)")
    func shutdown() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write(RelayGateway.apiKey, to: "api.key")
        let file = try directory.write(RelayGateway.config(relay: RelayGateway.namespaces), to: "gateway.json")
        let gateway = try await LiveGateway.start(configFile: file, directory: directory, registry: gatewayRegistry)
        var clients: [RelayTestClient] = []
        for user in ["a", "b", "c"] {
            clients.append(try await RelayGateway.connect(gateway, token: try RelayTokens.mint(user)).client)
        }
        let stopping = Task { try await gateway.shutdown() }
        for client in clients {
            let closed = try await client.waitForClose(timeout: .seconds(10))
            #expect(closed.code == 3001)
            #expect(closed.reason == "shutdown")
        }
        try await stopping.value
    }
}
