import Logging
import NIOConcurrencyHelpers
import NIOCore
import RESPClient

/// One Redis server of the engine: a command connection per event loop, a dedicated pub/sub
/// connection, and what this node keeps about the channels that live there.
final class RedisShard: Sendable {
    /// What the node keeps per shard, under the shard's own lock (never one lock for all channels).
    struct State {
        /// Per channel, how many of this node's event loops have subscribers of it.
        var interest: [String: Int] = [:]
        /// Per channel with interest, the subscription to its pub/sub channel: done once Redis
        /// confirmed it, so every loop's subscribers read history only after that.
        var listening: [String: EventLoopFuture<Void>] = [:]
        /// Per channel, the last publication delivered from pub/sub, to notice gaps.
        var delivered: [String: StreamPosition] = [:]
        /// Presence entries of this node's clients, refreshed before they expire in Redis.
        var localPresence: [String: [String: ClientInfo]] = [:]
    }

    let index: Int
    /// The address without its password.
    let endpoint: String
    let client: RedisClient
    let subscriber: RedisSubscriber
    let state = NIOLockedValueBox(State())
    /// Where the subscriber's events go; set when the engine starts.
    private let sink: NIOLockedValueBox<Sink>
    /// In a struct, not bare in the box: see ``RelayEventHandler``.
    struct Sink: Sendable {
        var call: (@Sendable (RedisSubscriberEvent) -> Void)?
    }
    /// `true`/`false` when the config decides between sharded and classic pub/sub.
    private let shardedPubSub: Bool?

    init(
        index: Int,
        configuration: RedisClientConfiguration,
        shardedPubSub: Bool?,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger
    ) {
        self.index = index
        self.endpoint = configuration.endpoint.description
        self.shardedPubSub = shardedPubSub
        self.client = RedisClient(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        let sink = NIOLockedValueBox(Sink())
        self.sink = sink
        self.subscriber = RedisSubscriber(
            configuration: configuration,
            eventLoop: eventLoopGroup.next(),
            sharded: shardedPubSub,
            logger: logger,
            handler: { event in sink.withLockedValue { $0.call }?(event) }
        )
    }

    /// Connects both sides; events of the pub/sub connection go to `handler`.
    func start(_ handler: @escaping @Sendable (RedisSubscriberEvent) -> Void) {
        self.sink.withLockedValue { $0.call = handler }
        self.client.start()
        self.subscriber.start()
    }

    func shutdown() async {
        try? await self.subscriber.shutdown().get()
        try? await self.client.shutdown().get()
    }

    /// The command that publishes to a pub/sub channel, matching how the subscribers listen:
    /// `spublish` on servers with sharded pub/sub (Redis 7 and later) unless the config says
    /// otherwise, else `publish`.
    var publishCommand: String {
        if let shardedPubSub = self.shardedPubSub { return shardedPubSub ? "spublish" : "publish" }
        return RedisServerFeatures.hasShardedPubSub(version: self.client.serverVersion) ? "spublish" : "publish"
    }

    var isReady: Bool { self.client.isConnected && self.subscriber.isConnected }
}
