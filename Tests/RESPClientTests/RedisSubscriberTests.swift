import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RESPClient
import Testing

@Suite("Redis subscriber", .timeLimit(.minutes(5)))
struct RedisSubscriberTests {
    /// Records what a subscriber tells, as text: "message ch payload", "subscribed true", "disconnected".
    final class Recorder: Sendable {
        private let events = NIOLockedValueBox<[String]>([])

        var all: [String] { self.events.withLockedValue { $0 } }

        func record(_ event: RedisSubscriberEvent) {
            let text: String
            switch event {
            case .message(let channel, let payload): text = "message \(channel) \(String(buffer: payload))"
            case .subscribed(let afterLoss): text = "subscribed \(afterLoss)"
            case .disconnected: text = "disconnected"
            }
            self.events.withLockedValue { $0.append(text) }
        }
    }

    private static func publish(
        _ connection: RedisConnection,
        sharded: Bool,
        _ channel: String,
        _ message: String
    )
        async throws -> Int64
    {
        let reply = try await connection.send(
            sharded ? "SPUBLISH" : "PUBLISH",
            [RESPArgument(channel), RESPArgument(message)]
        ).get()
        return reply.int64 ?? -1
    }

    @Test(
        "receives messages, stops after unsubscribe, and re-subscribes after a restart",
        arguments: [(nil, 3), (false, 3), (false, 2), (true, 2)] as [(Bool?, Int)]
    )
    func subscribeAndRecover(sharded: Bool?, preferredProtocol: Int) async throws {
        let server = try await RedisTestServer.start()
        var configuration = try server.configuration()
        configuration.preferredProtocol = preferredProtocol
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let recorder = Recorder()
        let subscriber = RedisSubscriber(
            configuration: configuration,
            eventLoop: loop,
            sharded: sharded,
            logger: quietLogger
        ) { event in
            recorder.record(event)
        }
        try await subscriber.subscribe(["early"]).get()
        subscriber.start()
        #expect(try await eventually { recorder.all == ["subscribed false"] })
        #expect(subscriber.isConnected)
        let usesSharded = sharded ?? true
        #expect(subscriber.usesShardedPubSub == usesSharded)
        try await subscriber.subscribe(["news", "early"]).get()

        let publisher = try await RedisConnection.connect(configuration, on: loop, logger: quietLogger).get()
        #expect(try await Self.publish(publisher, sharded: usesSharded, "news", "one") == 1)
        #expect(try await Self.publish(publisher, sharded: usesSharded, "early", "two") == 1)
        #expect(try await eventually { recorder.all.count == 3 })
        #expect(recorder.all == ["subscribed false", "message news one", "message early two"])

        try await subscriber.unsubscribe(["news"]).get()
        #expect(try await Self.publish(publisher, sharded: usesSharded, "news", "lost") == 0)
        _ = try await publisher.close().get()

        try await server.restart()
        #expect(try await eventually { recorder.all.suffix(2) == ["disconnected", "subscribed true"] })
        let again = try await RedisConnection.connect(configuration, on: loop, logger: quietLogger).get()
        #expect(try await Self.publish(again, sharded: usesSharded, "early", "three") == 1)
        #expect(try await Self.publish(again, sharded: usesSharded, "news", "gone") == 0)
        #expect(try await eventually { recorder.all.last == "message early three" })
        #expect(!recorder.all.contains("message news lost"))
        _ = try await again.close().get()
        try await subscriber.shutdown().get()
        #expect(!subscriber.isConnected)
    }

    @Test(
        "an unsubscribe followed at once by a subscribe leaves the channel subscribed",
        arguments: [true, false]
    )
    func unsubscribeThenSubscribe(sharded: Bool) async throws {
        let server = try await RedisTestServer.start()
        let configuration = try server.configuration()
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let recorder = Recorder()
        let subscriber = RedisSubscriber(
            configuration: configuration,
            eventLoop: loop,
            sharded: sharded,
            logger: quietLogger
        ) { event in
            recorder.record(event)
        }
        subscriber.start()
        #expect(try await eventually { subscriber.isConnected })
        try await subscriber.subscribe(["flip"]).get()
        // Sent back to back, neither awaited: the second must not be skipped because the first
        // is still unconfirmed (a deaf channel until the next reconnect).
        for _ in 0..<20 {
            let gone = subscriber.unsubscribe(["flip"])
            let back = subscriber.subscribe(["flip"])
            try await gone.get()
            try await back.get()
        }
        let publisher = try await RedisConnection.connect(configuration, on: loop, logger: quietLogger).get()
        #expect(try await Self.publish(publisher, sharded: sharded, "flip", "heard") == 1)
        #expect(try await eventually { recorder.all.last == "message flip heard" })
        // And the other way round: subscribe then unsubscribe at once leaves it unsubscribed.
        let back = subscriber.subscribe(["flop"])
        let gone = subscriber.unsubscribe(["flop"])
        try await back.get()
        try await gone.get()
        #expect(try await Self.publish(publisher, sharded: sharded, "flop", "unheard") == 0)
        _ = try await publisher.close().get()
        try await subscriber.shutdown().get()
    }

    @Test("a subscription the server refuses (ACL) fails its caller with the error, and the rest go on")
    func refusedSubscription() async throws {
        let server = try await RedisTestServer.start(configFile: ["user bob on >secret ~* &allowed* +@all"])
        let configuration = try server.configuration(url: "redis://bob:secret@127.0.0.1:\(server.port)")
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let recorder = Recorder()
        let subscriber = RedisSubscriber(
            configuration: configuration,
            eventLoop: loop,
            sharded: true,
            logger: quietLogger
        ) { event in
            recorder.record(event)
        }
        subscriber.start()
        #expect(try await eventually { recorder.all == ["subscribed false"] })
        await #expect(throws: RedisServerError.self) {
            try await subscriber.subscribe(["denied"]).get()
        }
        try await subscriber.subscribe(["allowed-1"]).get()
        let publisher = try await RedisConnection.connect(configuration, on: loop, logger: quietLogger).get()
        #expect(try await Self.publish(publisher, sharded: true, "allowed-1", "ok") == 1)
        #expect(try await eventually { recorder.all.last == "message allowed-1 ok" })
        _ = try await publisher.close().get()
        try await subscriber.shutdown().get()
    }
}
