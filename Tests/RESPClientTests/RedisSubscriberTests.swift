import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RESPClient
import Testing

@Suite("Redis subscriber")
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
}
