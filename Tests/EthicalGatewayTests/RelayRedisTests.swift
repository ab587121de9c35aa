import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// The relay's Redis engine with several gateway nodes sharing real `redis-server`s: delivery
/// across nodes in offset order, recovery on another node, presence, idempotency and namespaces
/// shared, gaps and Redis outages turned into recovery, channels spread over two shards.
@Suite("Fluxer Relay: the Redis engine across nodes", .timeLimit(.minutes(5)))
struct RelayRedisTests {
    /// The relay config members for a Redis engine on `addresses` (with the test namespaces).
    static func relayConfig(_ addresses: [String], prefix: String = "test-\(UUID().uuidString.prefix(8))") -> String {
        let list = addresses.map { "\"\($0)\"" }.joined(separator: ", ")
        // Long pings: the test clients answer none, and some tests take a while under load.
        return """
            \(RelayGateway.namespaces), "pingIntervalSeconds": 600,
            "engine": { "type": "redis", "addresses": [\(list)], "prefix": "\(prefix)", "presenceTTLSeconds": 5,
                        "commandTimeoutSeconds": 15, "connectTimeoutSeconds": 15 }
            """
    }

    /// Two in-process gateways (each with its own relay and Redis connections) on `addresses`.
    static func withTwoNodes<Result: Sendable>(
        _ addresses: [String],
        prefix: String = "test-\(UUID().uuidString.prefix(8))",
        _ body: (LiveGateway, LiveGateway) async throws -> Result
    ) async throws -> Result {
        let config = Self.relayConfig(addresses, prefix: prefix)
        return try await RelayGateway.with(relay: config) { nodeA in
            try await Self.waitUntilReady(nodeA)
            return try await RelayGateway.with(relay: config) { nodeB in
                try await Self.waitUntilReady(nodeB)
                return try await body(nodeA, nodeB)
            }
        }
    }

    /// `GET /relay/health` until it answers `status` (bounded).
    @discardableResult
    static func waitUntilReady(_ gateway: LiveGateway, status: Int = 200, seconds: Double = 15) async throws -> Int {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        var last = 0
        while ContinuousClock.now < deadline {
            last = try await Curl.request("https://127.0.0.1:\(gateway.port("https"))/relay/health").status
            if last == status { return last }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the relay's health stayed \(last), expected \(status)")
        return last
    }

    static func subscribe(
        _ gateway: LiveGateway,
        _ channel: String,
        user: String = "alice",
        extra: [String: Any] = [:]
    ) async throws -> (client: RelayTestClient, reply: [String: Any]) {
        let (client, connected) = try await RelayGateway.connect(gateway, token: try RelayTokens.mint(user))
        #expect(result(connected, "connect") != nil, "\(connected)")
        let reply = try await client.call("subscribe", ["channel": channel].merging(extra) { $1 })
        return (client, reply)
    }

    @Test("a publication through node A reaches node B's subscribers once each, in offset order")
    func deliveryAcrossNodes() async throws {
        let redis = try await RedisServerProcess.shared()
        defer { redis.stop() }
        try await Self.withTwoNodes([redis.url]) { nodeA, nodeB in
            let (subscriber, reply) = try await Self.subscribe(nodeB, "chat:across")
            #expect(result(reply, "subscribe")?["offset"] as? Int == 0, "\(reply)")
            var offsets: [Int] = []
            for n in 1...30 {
                let published = try await RelayGateway.api(
                    nodeA,
                    "publish",
                    ["channel": "chat:across", "data": ["n": n]]
                )
                offsets.append((published["result"] as? [String: Any])?["offset"] as? Int ?? -1)
            }
            #expect(offsets == Array(1...30))
            var delivered: [Int] = []
            for _ in 1...30 {
                let publication = try await subscriber.nextPublication()
                delivered.append(publication["offset"] as? Int ?? -1)
                #expect((publication["data"] as? [String: Any])?["n"] as? Int == delivered.last)
            }
            #expect(delivered == Array(1...30))
            // History written through A is read through B.
            let history = try await subscriber.call("history", ["channel": "chat:across", "limit": 3, "reverse": true])
            let publications = (result(history, "history")?["publications"] as? [[String: Any]]) ?? []
            #expect(publications.compactMap { $0["offset"] as? Int } == [30, 29, 28])
            // With `since`, reverse pages back from just before it (Centrifugo's meaning).
            let epoch = try #require(result(history, "history")?["epoch"] as? String)
            for (since, expected) in [(10, [9, 8, 7]), (2, [1]), (1, [])] {
                let page = try await subscriber.call(
                    "history",
                    [
                        "channel": "chat:across", "limit": 3, "reverse": true,
                        "since": ["offset": since, "epoch": epoch],
                    ]
                )
                let offsets = ((result(page, "history")?["publications"] as? [[String: Any]]) ?? []).compactMap {
                    $0["offset"] as? Int
                }
                #expect(offsets == expected, "before \(since): \(page)")
            }
            subscriber.close()
        }
    }

    @Test(
        "centrifuge-python (JSON, then Protobuf) moves from node A to node B mid-stream and recovers with no loss and no duplicate",
        arguments: [false, true]
    )
    func sdkMovesBetweenNodes(protobuf: Bool) async throws {
        let redis = try await RedisServerProcess.shared()
        defer { redis.stop() }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        _ = try directory.write(RelayGateway.apiKey + "\n", to: "api.key")
        let config = try directory.write(
            RelayGateway.config(relay: Self.relayConfig([redis.url])),
            to: "gateway.json"
        )
        let nodes = try await [
            GatewayProcess(arguments: ["run", "--config", config.path], expectedListeners: 1),
            GatewayProcess(arguments: ["run", "--config", config.path], expectedListeners: 1),
        ]
        defer { for node in nodes { _ = node.stop() } }
        let ports = try nodes.map { node in try #require(node.listeningPorts["https"], "\(node.log)") }
        #expect(ports[0] != ports[1])
        let outcome = try await RelayProtobufTests.scenario(
            protobuf: protobuf,
            "cross-node",
            [
                "wss://127.0.0.1:\(ports[0])/relay/connection/websocket",
                "wss://127.0.0.1:\(ports[1])/relay/connection/websocket",
                "https://127.0.0.1:\(ports[0])/relay/api", "https://127.0.0.1:\(ports[1])/relay/api",
                RelayGateway.apiKey, try RelayTokens.mint("mover"),
            ]
        )
        #expect(outcome["received"] as? [Int] == Array(1...9), "\(outcome)")
        #expect(outcome["extra"] as? Int == 0)
        #expect(outcome["was_recovering"] as? Bool == true)
        #expect(outcome["recovered"] as? Bool == true)
        #expect(outcome["presence_a"] as? [String] == ["mover"])
        #expect(outcome["presence_b"] as? [String] == ["mover"])
        #expect(outcome["stats_a"] as? [Int] == [1, 1])
        #expect(outcome["stats_b"] as? [Int] == [1, 1])
        let idempotent = try #require(outcome["idempotent"] as? [[Any]])
        #expect(idempotent.count == 2 && idempotent[0][0] as? Int == idempotent[1][0] as? Int)
        #expect(idempotent.count == 2 && idempotent[0][1] as? String == idempotent[1][1] as? String)
    }

    @Test("presence joins from two nodes, leaves on unsubscribe, and expires when its node stops refreshing it")
    func presenceAcrossNodes() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        try await Self.withTwoNodes([redis.url]) { nodeA, nodeB in
            let (alice, _) = try await Self.subscribe(nodeA, "chat:room", user: "alice")
            let (bob, _) = try await Self.subscribe(nodeB, "chat:room", user: "bob")
            let (bobAgain, _) = try await Self.subscribe(nodeA, "chat:room", user: "bob")
            for node in [nodeA, nodeB] {
                let stats = try await RelayGateway.api(node, "presence_stats", ["channel": "chat:room"])
                #expect(stats["result"] as? [String: Int] == ["num_clients": 3, "num_users": 2], "\(stats)")
                let presence = try await RelayGateway.api(node, "presence", ["channel": "chat:room"])
                let clients = ((presence["result"] as? [String: Any])?["presence"] as? [String: Any]) ?? [:]
                #expect(clients.count == 3)
            }
            // Alice on A sees Bob's join made on B... already happened; a new join from B reaches A.
            let (carol, _) = try await Self.subscribe(nodeB, "chat:room", user: "carol")
            var sawJoin = false
            for _ in 0..<10 where !sawJoin {
                let push = try await alice.nextPush()
                let join = (push["push"] as? [String: Any])?["join"] as? [String: Any]
                sawJoin = (join?["info"] as? [String: Any])?["user"] as? String == "carol"
            }
            #expect(sawJoin)
            _ = try await bob.call("unsubscribe", ["channel": "chat:room"])
            let afterLeave = try await RelayGateway.api(nodeA, "presence_stats", ["channel": "chat:room"])
            #expect(afterLeave["result"] as? [String: Int] == ["num_clients": 3, "num_users": 3], "\(afterLeave)")
            for client in [alice, bob, bobAgain, carol] { client.close() }
        }
        // A node that vanished without removing its entries (here: entries written by hand, never
        // refreshed) leaves presence within the TTL.
        let prefix = "expiry"
        try await RelayGateway.with(relay: Self.relayConfig([redis.url], prefix: prefix)) { node in
            try await Self.waitUntilReady(node)
            let info = #"{"user":"ghost","client":"c-ghost"}"#
            let data = "\(prefix):presence:data:{chat:ghosts}"
            _ = try await redis.command(["HSET", data, "c-ghost", "ghost\n\(info)"])
            _ = try await redis.command(["ZADD", "\(prefix):presence:expiry:{chat:ghosts}", "1", "c-ghost"])
            _ = try await redis.command(["HSET", "\(prefix):presence:users:{chat:ghosts}", "ghost", "1"])
            let stats = try await RelayGateway.api(node, "presence_stats", ["channel": "chat:ghosts"])
            #expect(stats["result"] as? [String: Int] == ["num_clients": 0, "num_users": 0], "\(stats)")
            #expect(try await redis.command(["HLEN", data]) == "0")
        }
    }

    @Test("an idempotency key used on node A is honoured on node B")
    func idempotencyAcrossNodes() async throws {
        let redis = try await RedisServerProcess.shared()
        defer { redis.stop() }
        try await Self.withTwoNodes([redis.url]) { nodeA, nodeB in
            let (subscriber, _) = try await Self.subscribe(nodeB, "chat:once")
            let params: [String: Any] = ["channel": "chat:once", "data": ["n": 1], "idempotency_key": "k-1"]
            let first = try await RelayGateway.api(nodeA, "publish", params)
            let second = try await RelayGateway.api(nodeB, "publish", params)
            #expect(first["result"] as? [String: AnyHashable] == second["result"] as? [String: AnyHashable])
            _ = try await RelayGateway.api(nodeA, "publish", ["channel": "chat:once", "data": ["n": 2]])
            let delivered = try await [subscriber.nextPublication(), subscriber.nextPublication()]
            #expect(delivered.compactMap { ($0["data"] as? [String: Any])?["n"] as? Int } == [1, 2])
            subscriber.close()
        }
    }

    @Test("a namespace created and deleted through node A applies on node B")
    func namespacesAcrossNodes() async throws {
        let redis = try await RedisServerProcess.shared()
        defer { redis.stop() }
        try await Self.withTwoNodes([redis.url]) { nodeA, nodeB in
            let created = try await Curl.request(
                "https://127.0.0.1:\(nodeA.port("https"))/relay/api/namespaces/games",
                [
                    "-X", "PUT", "-H", "X-API-Key: \(RelayGateway.apiKey)", "--data-raw",
                    #"{"subscribe": "any", "publish": "any", "historySize": 10}"#,
                ]
            )
            #expect(created.status == 201, "\(created.bodyText)")
            let onB = try await Self.poll {
                try await Curl.request(
                    "https://127.0.0.1:\(nodeB.port("https"))/relay/api/namespaces/games",
                    ["-H", "X-API-Key: \(RelayGateway.apiKey)"]
                ).status == 200
            }
            #expect(onB, "node B never saw the namespace created on node A")
            let (subscriber, reply) = try await Self.subscribe(nodeB, "games:chess")
            #expect(result(reply, "subscribe") != nil, "\(reply)")
            let deleted = try await Curl.request(
                "https://127.0.0.1:\(nodeA.port("https"))/relay/api/namespaces/games",
                ["-X", "DELETE", "-H", "X-API-Key: \(RelayGateway.apiKey)"]
            )
            #expect(deleted.status == 204)
            // Node B's subscriber of the deleted namespace is unsubscribed by its own node.
            let push = try await subscriber.nextPush()
            #expect((push["push"] as? [String: Any])?["unsubscribe"] != nil, "\(push)")
            subscriber.close()
        }
    }

    @Test("a gap in a node's pub/sub stream makes the channel's subscribers recover (unsubscribe 2500)")
    func gapMakesSubscribersRecover() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let prefix = "gap"
        try await RelayGateway.with(relay: Self.relayConfig([redis.url], prefix: prefix)) { node in
            try await Self.waitUntilReady(node)
            let (subscriber, _) = try await Self.subscribe(node, "chat:gappy")
            let published = try await RelayGateway.api(node, "publish", ["channel": "chat:gappy", "data": ["n": 1]])
            let epoch = try #require((published["result"] as? [String: Any])?["epoch"] as? String)
            #expect(try await subscriber.nextPublication()["offset"] as? Int == 1)
            // Offset 3 arrives without 2, as if a message had been lost between Redis and the node.
            let payload = "p3:\(epoch):" + #"{"data":{"n":3}}"#
            _ = try await redis.command(["SPUBLISH", "\(prefix):channel:chat:gappy", payload])
            let push = try await subscriber.nextPush()
            let unsubscribe = (push["push"] as? [String: Any])?["unsubscribe"] as? [String: Any]
            #expect(unsubscribe?["code"] as? Int == 2500, "\(push)")
            subscriber.close()
        }
    }

    @Test(
        "Redis killed and restarted: publishes fail fast, clients stay connected, then recover or are told they cannot"
    )
    func redisOutage() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        try await RelayGateway.with(relay: Self.relayConfig([redis.url])) { node in
            try await Self.waitUntilReady(node)
            let (subscriber, reply) = try await Self.subscribe(node, "chat:outage", extra: ["recover": true])
            let epoch = try #require(result(reply, "subscribe")?["epoch"] as? String, "\(reply)")
            _ = try await RelayGateway.api(node, "publish", ["channel": "chat:outage", "data": ["n": 1]])
            #expect(try await subscriber.nextPublication()["offset"] as? Int == 1)

            redis.kill()
            try await Self.waitUntilReady(node, status: 503)
            // Refused at once as unavailable (not after a command timeout, which would say so).
            let refused = try await RelayGateway.api(node, "publish", ["channel": "chat:outage", "data": ["n": 2]])
            let error = try #require(refused["error"] as? [String: Any], "\(refused)")
            #expect(error["code"] as? Int == 100)
            #expect((error["message"] as? String)?.contains("Redis at redis://127.0.0.1") == true, "\(error)")
            #expect((error["message"] as? String)?.contains("unavailable") == true, "\(error)")
            let clientPublish = try await subscriber.call("publish", ["channel": "chat:outage", "data": ["n": 2]])
            #expect(errorCode(clientPublish) == 100, "\(clientPublish)")
            #expect((clientPublish["error"] as? [String: Any])?["temporary"] as? Bool == true)

            try await redis.start()
            try await Self.waitUntilReady(node)
            // The node's pub/sub came back: its subscribers are told to subscribe again and recover.
            var code: Int?
            for _ in 0..<10 where code == nil {
                let push = try await subscriber.nextPush(timeout: .seconds(15))
                code = ((push["push"] as? [String: Any])?["unsubscribe"] as? [String: Any])?["code"] as? Int
            }
            #expect(code == 2500)
            // Redis lost everything (no persistence): the old epoch cannot be recovered, and the
            // client is told so rather than given a silent hole.
            // As an SDK does, a temporary error (a command connection still reconnecting) is retried.
            var again: [String: Any] = [:]
            for _ in 0..<40 {
                again = try await subscriber.call(
                    "subscribe",
                    ["channel": "chat:outage", "recover": true, "offset": 1, "epoch": epoch]
                )
                guard errorCode(again) == 100 else { break }
                try await Task.sleep(for: .milliseconds(250))
            }
            let resubscribed = try #require(result(again, "subscribe"), "\(again)")
            #expect(resubscribed["recovered"] as? Bool == false)
            #expect(resubscribed["epoch"] as? String != epoch)
            _ = try await RelayGateway.api(node, "publish", ["channel": "chat:outage", "data": ["n": 3]])
            #expect(try await subscriber.nextPublication()["offset"] as? Int == 1)
            subscriber.close()
        }
    }

    @Test("two Redis shards split the channels, and delivery across nodes works on both")
    func twoShards() async throws {
        let first = try await RedisServerProcess.shared()
        let second = try await RedisServerProcess()
        defer {
            first.stop()
            second.stop()
        }
        let prefix = "shards-\(UUID().uuidString.prefix(8))"
        try await Self.withTwoNodes([first.url, second.url], prefix: prefix) { nodeA, nodeB in
            let channels = (0..<16).map { "feed:item-\($0)" }
            var subscribers: [RelayTestClient] = []
            for channel in channels {
                subscribers.append(try await Self.subscribe(nodeB, channel).client)
            }
            for channel in channels {
                _ = try await RelayGateway.api(nodeA, "publish", ["channel": channel, "data": ["c": channel]])
            }
            for (index, subscriber) in subscribers.enumerated() {
                let publication = try await subscriber.nextPublication()
                #expect((publication["data"] as? [String: Any])?["c"] as? String == channels[index])
                subscriber.close()
            }
            let onFirst = try await first.command(["--scan", "--pattern", "\(prefix):meta:*"])
            let onSecond = try await second.command(["--scan", "--pattern", "\(prefix):meta:*"])
            let firstCount = onFirst.split(separator: "\n").count
            let secondCount = onSecond.split(separator: "\n").count
            #expect(firstCount + secondCount == channels.count)
            #expect(firstCount > 0 && secondCount > 0, "first: \(onFirst), second: \(onSecond)")
        }
    }

    @Test("a rediss:// address with the config's CA and server name works; without the CA it is never trusted")
    func tlsToRedis() async throws {
        let redis = try await RedisServerProcess(tls: true)
        defer { redis.stop() }
        let certificate = try #require(redis.tlsCertificate)
        #expect(try await redis.command(["PING"]) == "PONG")
        let pem = try String(contentsOf: certificate, encoding: .utf8)
        let engine = """
            \(RelayGateway.namespaces), "pingIntervalSeconds": 600,
            "engine": { "type": "redis", "addresses": ["rediss://127.0.0.1:\(redis.port)"], "prefix": "tls",
                        "tls": { "caFile": "redis-ca.pem", "serverName": "redis.test" } }
            """
        try await RelayGateway.with(relay: engine, prepare: { try $0.write(pem, to: "redis-ca.pem") }) { node in
            try await Self.waitUntilReady(node)
            let (subscriber, _) = try await Self.subscribe(node, "chat:secure")
            let published = try await RelayGateway.api(node, "publish", ["channel": "chat:secure", "data": ["n": 1]])
            #expect((published["result"] as? [String: Any])?["offset"] as? Int == 1, "\(published)")
            #expect(try await subscriber.nextPublication()["offset"] as? Int == 1)
            subscriber.close()
        }
        #expect(try await redis.command(["EXISTS", "tls:meta:{chat:secure}"]) == "1")
        // The system's roots do not know this certificate: the engine never becomes ready.
        let untrusted = """
            \(RelayGateway.namespaces),
            "engine": { "type": "redis", "addresses": ["rediss://127.0.0.1:\(redis.port)"], "prefix": "tls2",
                        "tls": { "serverName": "redis.test" }, "connectTimeoutSeconds": 1 }
            """
        try await RelayGateway.with(relay: untrusted) { node in
            let health = try await Curl.request("https://127.0.0.1:\(node.port("https"))/relay/health")
            #expect(health.status == 503, "\(health.bodyText)")
            let refused = try await RelayGateway.api(node, "publish", ["channel": "chat:secure", "data": ["n": 2]])
            #expect((refused["error"] as? [String: Any])?["code"] as? Int == 100, "\(refused)")
        }
    }

    @Test("a Redis with a password: the engine's passwordFile authenticates; a wrong one leaves it unready")
    func passwordFile() async throws {
        let redis = try await RedisServerProcess(arguments: ["--requirepass", "engine-secret-0123"])
        defer { redis.stop() }
        let config = { (prefix: String) in
            """
            \(RelayGateway.namespaces), "pingIntervalSeconds": 600,
            "engine": { "type": "redis", "addresses": ["\(redis.url)"], "prefix": "\(prefix)",
                        "passwordFile": "redis.password" }
            """
        }
        try await RelayGateway.with(
            relay: config("auth"),
            prepare: { try $0.write("engine-secret-0123\n", to: "redis.password") }
        ) { node in
            try await Self.waitUntilReady(node)
            let published = try await RelayGateway.api(node, "publish", ["channel": "chat:auth", "data": ["n": 1]])
            #expect((published["result"] as? [String: Any])?["offset"] as? Int == 1, "\(published)")
        }
        #expect(try await redis.command(["EXISTS", "auth:meta:{chat:auth}"], password: "engine-secret-0123") == "1")
        try await RelayGateway.with(
            relay: config("wrong"),
            prepare: { try $0.write("not-the-password\n", to: "redis.password") }
        ) { node in
            let health = try await Curl.request("https://127.0.0.1:\(node.port("https"))/relay/health")
            #expect(health.status == 503, "\(health.bodyText)")
            #expect(health.bodyText.contains("Redis unavailable"), "\(health.bodyText)")
        }
    }

    @Test("presence entries outlive their TTL while their node refreshes them, and stay counted once")
    func presenceRefresh() async throws {
        let redis = try await RedisServerProcess.shared()
        let prefix = "refresh-\(UUID().uuidString.prefix(8))"
        try await RelayGateway.with(relay: Self.relayConfig([redis.url], prefix: prefix)) { node in
            try await Self.waitUntilReady(node)
            let (alice, _) = try await Self.subscribe(node, "chat:kept", user: "alice")
            let (bob, _) = try await Self.subscribe(node, "chat:kept", user: "bob")
            // The TTL is 5 s; entries are refreshed every third of it. Waiting out more than a
            // TTL is the point here (an expiry), so this sleep is the test.
            try await Task.sleep(for: .seconds(6.5))
            let stats = try await RelayGateway.api(node, "presence_stats", ["channel": "chat:kept"])
            #expect(stats["result"] as? [String: Int] == ["num_clients": 2, "num_users": 2], "\(stats)")
            _ = try await bob.call("unsubscribe", ["channel": "chat:kept"])
            try await Task.sleep(for: .seconds(2))  // A refresh in between must not bring Bob back.
            let after = try await RelayGateway.api(node, "presence_stats", ["channel": "chat:kept"])
            #expect(after["result"] as? [String: Int] == ["num_clients": 1, "num_users": 1], "\(after)")
            alice.close()
            bob.close()
        }
    }

    @Test("a subject with a newline is one user in presence, not two")
    func presenceSubjectWithNewline() async throws {
        let redis = try await RedisServerProcess.shared()
        try await RelayGateway.with(relay: Self.relayConfig([redis.url])) { node in
            try await Self.waitUntilReady(node)
            let (first, _) = try await Self.subscribe(node, "chat:names", user: "eve\nmallory")
            let (second, _) = try await Self.subscribe(node, "chat:names", user: "eve")
            let stats = try await RelayGateway.api(node, "presence_stats", ["channel": "chat:names"])
            #expect(stats["result"] as? [String: Int] == ["num_clients": 2, "num_users": 2], "\(stats)")
            let presence = try await RelayGateway.api(node, "presence", ["channel": "chat:names"])
            let clients = ((presence["result"] as? [String: Any])?["presence"] as? [String: [String: Any]]) ?? [:]
            #expect(Set(clients.values.compactMap { $0["user"] as? String }) == ["eve\nmallory", "eve"])
            _ = try await first.call("unsubscribe", ["channel": "chat:names"])
            let after = try await RelayGateway.api(node, "presence_stats", ["channel": "chat:names"])
            #expect(after["result"] as? [String: Int] == ["num_clients": 1, "num_users": 1], "\(after)")
            first.close()
            second.close()
        }
    }

    /// Polls `condition` for up to 10 s.
    static func poll(_ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }
}
