public import NIOCore

/// Who published or joined: the `info` object of publications, joins, leaves and presence.
public struct ClientInfo: Sendable, Equatable {
    public let user: String
    public let client: String
    /// The connection's `data` from its token (`info` claim), if any.
    public let connInfo: WireJSON?

    public init(user: String, client: String, connInfo: WireJSON? = nil) {
        self.user = user
        self.client = client
        self.connInfo = connInfo
    }

    /// `{"user":…,"client":…,"conn_info":…}`.
    var wire: WireJSON {
        var members: [String: WireJSON] = ["user": .string(self.user), "client": .string(self.client)]
        if let connInfo = self.connInfo { members["conn_info"] = connInfo }
        return .object(members)
    }
}

/// A position in a channel's stream: the offset of its last publication and the epoch, which
/// changes whenever the stream's history was lost (a restart of an in-memory engine).
public struct StreamPosition: Sendable, Equatable {
    public let offset: UInt64
    public let epoch: String

    public init(offset: UInt64, epoch: String) {
        self.offset = offset
        self.epoch = epoch
    }
}

/// One publication as the engine keeps and delivers it.
public struct RelayPublication: Sendable {
    /// The position in the channel's stream; 0 when the namespace keeps no history.
    public let offset: UInt64
    public let data: WireJSON
    public let info: ClientInfo?
    public let tags: [String: String]

    /// `{"data":…,"offset":…,"info":…,"tags":…}` as publications appear in pushes and history.
    var wire: WireJSON {
        var members: [String: WireJSON] = ["data": self.data]
        if self.offset > 0 { members["offset"] = .number(String(self.offset)) }
        if let info = self.info { members["info"] = info.wire }
        if !self.tags.isEmpty { members["tags"] = .object(self.tags.mapValues { .string($0) }) }
        return .object(members)
    }
}

/// How a publication is kept, from its namespace's options.
public struct HistoryPolicy: Sendable, Equatable {
    /// Publications kept; 0 keeps none and assigns no offsets.
    public let size: Int
    /// Seconds the history lives after the channel's last publication.
    public let ttlSeconds: Int
}

/// What an engine hands the relay for delivery to this node's subscribers.
public enum RelayEvent: Sendable {
    case publication(channel: String, RelayPublication)
    case join(channel: String, ClientInfo)
    case leave(channel: String, ClientInfo)
}

/// The result of a publish.
public struct PublishOutcome: Sendable, Equatable {
    /// The stream position after the publication; `nil` when the channel keeps no history.
    public let position: StreamPosition?
    /// Whether the idempotency key was seen before and the publication was not made again.
    public let duplicate: Bool
}

/// What an engine holds, for the relay's statistics.
public struct RelayEngineStats: Sendable, Equatable {
    /// Channels the engine keeps any state for (a stream, presence, or this node's interest).
    public let channels: Int
    /// Channels with a stream (a position, and history while it lives).
    public let streams: Int

    public init(channels: Int, streams: Int) {
        self.channels = channels
        self.streams = streams
    }
}

/// A page of a channel's history.
public struct HistoryPage: Sendable {
    public let publications: [RelayPublication]
    /// The stream's current position.
    public let position: StreamPosition
    /// For a query `since` a position: whether every publication after it is in `publications`
    /// (same epoch and nothing after it has been dropped from history).
    public let complete: Bool
}

/// Where channels live: streams with history and offsets, presence, and delivery of events to
/// the node's subscribers. The in-memory engine is the embedded default; an engine shared by
/// several nodes (Redis) implements the same protocol, and nothing above it changes.
///
/// Every future completes on the event loop passed in. For each channel, the engine calls the
/// delivery handler in offset order.
public protocol RelayEngine: Sendable {
    /// Sets where the engine delivers events; called once before any other method.
    func start(delivering handler: @escaping @Sendable (RelayEvent) -> Void)

    /// Publishes `data`; with an `idempotencyKey` seen on the channel within `idempotencyWindow`
    /// seconds, returns the first publication's position and publishes nothing.
    func publish(
        channel: String,
        data: WireJSON,
        info: ClientInfo?,
        tags: [String: String],
        history: HistoryPolicy,
        idempotencyKey: String?,
        idempotencyWindow: Double,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<PublishOutcome>

    /// Publications after `since` (all kept ones when `nil`), at most `limit` (all when `nil`),
    /// newest first when `reverse`.
    func history(
        channel: String,
        since: StreamPosition?,
        limit: Int?,
        reverse: Bool,
        history: HistoryPolicy,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<HistoryPage>

    /// Drops a channel's history; its position stays while this node has subscribers of it.
    func removeHistory(channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void>

    /// This node gained subscribers of `channel` on one more of its event loops. While any
    /// remain, the engine keeps the channel's stream position, so they can recover from it (a
    /// shared engine would also start listening for the channel's events here).
    func retainChannel(_ channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void>

    /// Balances one ``retainChannel(_:on:)``: one event loop has no subscribers of `channel`
    /// left. Once none has, the engine forgets the channel unless it still has history.
    func releaseChannel(_ channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<Void>

    /// What the engine holds, for statistics.
    func stats(on eventLoop: any EventLoop) -> EventLoopFuture<RelayEngineStats>

    /// Adds a client to a channel's presence; with `announce`, subscribers get a `join`.
    func addPresence(
        channel: String,
        info: ClientInfo,
        announce: Bool,
        on eventLoop: any EventLoop
    )
        -> EventLoopFuture<Void>

    /// Removes a client from a channel's presence; with `announce`, subscribers get a `leave`.
    func removePresence(
        channel: String,
        info: ClientInfo,
        announce: Bool,
        on eventLoop: any EventLoop
    )
        -> EventLoopFuture<Void>

    /// The clients in a channel's presence, by client id.
    func presence(channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<[String: ClientInfo]>
}
