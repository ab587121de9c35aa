import EthicalGateway
import EthicalGatewayTesting
@_spi(Testing) import FluxerRelayPlugin
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// What a relay client (or the relay's own storage) can make the gateway hold, and for how long:
/// commands behind `connect`, per-channel engine state, sockets of clients that stopped reading,
/// namespace writes; and that every command is answered, even when the engine fails.
@Suite("Fluxer Relay: bounded resources and failures", .timeLimit(.minutes(5)))
struct RelayResourceTests {
    @Test("commands behind connect wait for its reply, a few of them; too many close the connection with 3501")
    func commandsBehindConnect() async throws {
        try await RelayGateway.with { gateway in
            // Tokens not seen before: verifying them is not answered from the cache, so the
            // commands sent behind connect in the same frame wait for it.
            func connectFrame(_ user: String, pings: Int) throws -> String {
                let token = try RelayTokens.mint(user, extra: ["jti": UUID().uuidString])
                let pingLines = (0..<pings).map { #"{"id":\#($0 + 2),"ping":{}}"# }
                return ([#"{"id":1,"connect":{"token":"\#(token)"}}"#] + pingLines).joined(separator: "\n")
            }
            let polite = try await RelayTestClient.connect(port: gateway.port("https"))
            polite.send(try connectFrame("pia", pings: 3))
            #expect(result(try await polite.reply(to: 1), "connect") != nil)
            for id in 2...4 { #expect(result(try await polite.reply(to: id), "ping") != nil) }
            polite.close()

            let eager = try await RelayTestClient.connect(port: gateway.port("https"))
            eager.send(try connectFrame("eli", pings: 40))
            let closed = try await eager.waitForClose()
            #expect(closed.code == 3501)
            #expect(closed.reason.contains("too many commands before the connect reply"))
        }
    }

    // Long pings: the 700 commands here take longer than 25 s + 10 s on a loaded machine, and
    // the test clients answer no pings.
    static let stateRelay = """
        "allowAnonymous": true, "commandsPerSecond": 100000, "commandBurst": 100000, "pingIntervalSeconds": 600,
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

    @Test("a slow consumer's socket is closed within seconds of its close frame, though the peer never reads it")
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
            // 2.4 MB for a reader whose buffers hold well under 200 KB (800 KB once left the
            // queue under its limit in a CI run: no slow-consumer disconnect).
            let payload = String(repeating: "p", count: 4000)
            for n in 1...600 {
                publisher.send(#"{"publish":{"channel":"strict:flood","data":{"n":\#(n),"p":"\#(payload)"}}}"#)
            }
            let disconnected = try await RelayGateway.waitForStats(gateway) {
                $0["slowDisconnects"] as? Int ?? 0 >= 1
            }
            #expect(disconnected["slowDisconnects"] as? Int == 1)
            // The stalled client still reads nothing; its socket goes anyway: 1 s for the close
            // frame, then up to NIOSSL's shutdown timeout (5 s) for a close_notify that cannot be
            // written either. Without the bound it would stay until the idle timeout (60 s).
            let released = try await RelayGateway.waitForStats(gateway, seconds: 15) {
                $0["closingConnections"] as? Int == 0
            }
            #expect(released["closingConnections"] as? Int == 0, "\(released)")
            #expect(released["connections"] as? Int == 1)
            stalled.close()
            publisher.close()
        }
    }

    @Test("presence lookups that fail in the engine are answered with error 100, and the connection stays")
    func presenceFailureIsAnswered() async throws {
        var registry = gatewayRegistry
        registry.register(PresenceFailingRelayPlugin.self)
        try await RelayGateway.with(plugin: PresenceFailingRelayPlugin.id, registry: registry) { gateway in
            let (client, _) = try await RelayGateway.connect(gateway, token: try RelayTokens.mint("paz"))
            #expect(result(try await client.call("subscribe", ["channel": "chat:p"]), "subscribe") != nil)
            let presence = try await client.call("presence", ["channel": "chat:p"], timeout: .seconds(5))
            #expect(errorCode(presence) == 100, "\(presence)")
            let stats = try await client.call("presence_stats", ["channel": "chat:p"], timeout: .seconds(5))
            #expect(errorCode(stats) == 100, "\(stats)")
            #expect(result(try await client.call("ping"), "ping") != nil)
            let api = try await RelayGateway.api(gateway, "presence", ["channel": "chat:p"])
            #expect((api["error"] as? [String: Any])?["code"] as? Int == 100, "\(api)")
            client.close()
        }
    }

    @Test("namespace changes are written off the event loop: subscribes go on while the file write is stuck")
    func namespaceWriteOffTheLoop() async throws {
        let folder = "state/fluxer-relay"
        let relay = #""commandsPerSecond": 100000, "commandBurst": 100000, "# + RelayGateway.namespaces
        try await RelayGateway.with(
            relay: relay,
            prepare: { directory in
                let url = directory.url.appendingPathComponent(folder)
                try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
                // The temporary file the write goes through is a FIFO: opening it to write waits
                // for a reader, so the write is stuck until the test reads it.
                let fifo = url.appendingPathComponent("relay-namespaces.json.tmp").path
                guard mkfifo(fifo, 0o600) == 0 else { throw RelayTestClientError(message: "mkfifo \(fifo) failed") }
            }
        ) { gateway in
            let directory = gateway.directory.url.appendingPathComponent(folder)
            let (client, _) = try await RelayGateway.connect(gateway, token: try RelayTokens.mint("wes"))
            let finished = NIOLockedValueBox(false)
            let put = Task {
                defer { finished.withLockedValue { $0 = true } }
                return try await Self.putNamespace(gateway, "news", #"{"subscribe":"authenticated","historySize":5}"#)
            }
            // For a second of the write being stuck, subscribes are answered at once.
            let started = ContinuousClock.now
            var round = 0
            var stalled: (any Error)?
            do {
                while ContinuousClock.now - started < .seconds(1) {
                    round += 1
                    let channel = "chat:w-\(round)"
                    // The write stays stuck until the test reads the FIFO: a loop blocked by it
                    // would never answer, so a generous limit (a loaded CI machine overran 2 s)
                    // still tells the two apart.
                    let subscribed = try await client.call("subscribe", ["channel": channel], timeout: .seconds(10))
                    #expect(result(subscribed, "subscribe") != nil, "\(subscribed)")
                    _ = try await client.call("unsubscribe", ["channel": channel], timeout: .seconds(10))
                }
            } catch {
                stalled = error
            }
            #expect(finished.withLockedValue { $0 } == false, "the PUT waits for its write")

            // Reading the FIFO lets the write finish (also when the subscribes stalled, so the
            // gateway can stop).
            let written = await Self.readFIFO(directory.appendingPathComponent("relay-namespaces.json.tmp").path)
            if let stalled { throw stalled }
            #expect(written.contains(#""news""#))
            let created = try await put.value
            #expect(created.status == 201, "\(created.status) \(created.bodyText)")
            #expect(result(try await client.call("subscribe", ["channel": "news:x"]), "subscribe") != nil)

            // The next change goes through a regular temporary file and replaces the saved one.
            #expect(try await Self.putNamespace(gateway, "later", #"{"subscribe":"any"}"#).status == 201)
            let saved = try Data(contentsOf: directory.appendingPathComponent("relay-namespaces.json"))
            let names = try JSONSerialization.jsonObject(with: saved) as? [String: Any]
            #expect(names?["news"] != nil && names?["later"] != nil)
            client.close()
        }
    }

    static func putNamespace(_ gateway: LiveGateway, _ name: String, _ body: String) async throws -> CurlResponse {
        try await Curl.request(
            "https://127.0.0.1:\(gateway.port("https"))/relay/api/namespaces/\(name)",
            [
                "-X", "PUT", "-H", "X-API-Key: \(RelayGateway.apiKey)", "-H", "Content-Type: application/json",
                "--data-raw", body,
            ]
        )
    }

    /// Opens a FIFO for reading (which lets its writer go on) and reads it to its end, on a
    /// thread of its own: both calls block.
    static func readFIFO(_ path: String) async -> String {
        await withCheckedContinuation { continuation in
            Thread {
                let descriptor = open(path, O_RDONLY)
                guard descriptor >= 0 else { return continuation.resume(returning: "") }
                var data = [UInt8]()
                var chunk = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = read(descriptor, &chunk, chunk.count)
                    guard count > 0 else { break }
                    data += chunk[0..<count]
                }
                close(descriptor)
                continuation.resume(returning: String(decoding: data, as: UTF8.self))
            }.start()
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

/// An in-memory engine whose presence lookups fail, as a shared engine's do when its store is down.
final class PresenceFailingEngine: RelayEngine {
    struct StoreDown: Error {}
    private let memory = MemoryEngine()

    func start(delivering handler: @escaping @Sendable (RelayEvent) -> Void) { self.memory.start(delivering: handler) }

    func publish(
        channel: String,
        data: WireJSON,
        info: ClientInfo?,
        tags: [String: String],
        history: HistoryPolicy,
        idempotencyKey: String?,
        idempotencyWindow: Double,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<PublishOutcome> {
        self.memory.publish(
            channel: channel,
            data: data,
            info: info,
            tags: tags,
            history: history,
            idempotencyKey: idempotencyKey,
            idempotencyWindow: idempotencyWindow,
            on: eventLoop
        )
    }

    func history(
        channel: String,
        since: StreamPosition?,
        limit: Int?,
        reverse: Bool,
        history: HistoryPolicy,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<HistoryPage> {
        self.memory.history(
            channel: channel,
            since: since,
            limit: limit,
            reverse: reverse,
            history: history,
            on: eventLoop
        )
    }

    func removeHistory(channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        self.memory.removeHistory(channel: channel, on: eventLoop)
    }

    func retainChannel(_ channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        self.memory.retainChannel(channel, on: eventLoop)
    }

    func releaseChannel(_ channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        self.memory.releaseChannel(channel, on: eventLoop)
    }

    func stats(on eventLoop: any EventLoop) -> EventLoopFuture<RelayEngineStats> {
        self.memory.stats(on: eventLoop)
    }

    func addPresence(
        channel: String,
        info: ClientInfo,
        announce: Bool,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<Void> {
        self.memory.addPresence(channel: channel, info: info, announce: announce, on: eventLoop)
    }

    func removePresence(
        channel: String,
        info: ClientInfo,
        announce: Bool,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<Void> {
        self.memory.removePresence(channel: channel, info: info, announce: announce, on: eventLoop)
    }

    func presence(channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<[String: ClientInfo]> {
        eventLoop.makeFailedFuture(StoreDown())
    }
}

/// The relay on ``PresenceFailingEngine``.
enum PresenceFailingRelayPlugin: BackendPlugin {
    static let id = "test-relay-presence-failing"
    typealias Configuration = RelayConfiguration

    static func provision(_ configuration: RelayConfiguration, context: PluginContext) throws -> any Backend {
        try FluxerRelayPlugin.provision(configuration, context: context, engine: PresenceFailingEngine())
    }
}
