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
    /// A publication already encoded as its JSON object (`{"data":…,"offset":…,…}`), as a
    /// shared engine receives it: pushed without decoding it.
    case encodedPublication(channel: String, offset: UInt64, body: ByteBuffer)
    case join(channel: String, ClientInfo)
    case leave(channel: String, ClientInfo)
    /// The node may have missed publications of `channel` (a gap in the engine's stream, or a
    /// lost connection to it): its subscribers are unsubscribed with code 2500 (insufficient
    /// state), so their SDKs subscribe again and recover from history.
    case insufficientState(channel: String)
}

/// Whether an engine can serve, for the relay's readiness.
public struct RelayEngineHealth: Sendable, Equatable {
    /// Whether publishes, history and presence can be served now.
    public let ready: Bool
    /// What is wrong when not ready, in words an operator acts on.
    public let detail: String

    public init(ready: Bool, detail: String) {
        self.ready = ready
        self.detail = detail
    }

    public static let ready = RelayEngineHealth(ready: true, detail: "ready")
}

/// Presence counts of a channel.
public struct PresenceStats: Sendable, Equatable {
    public let clients: Int
    public let users: Int

    public init(clients: Int, users: Int) {
        self.clients = clients
        self.users = users
    }
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
    /// (same epoch and nothing after it has been dropped from history); for a `reverse` query,
    /// whether the epoch is the same.
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
    /// oldest first; with `reverse`, newest first, and with `since` too, those before `since`
    /// (its offset excluded), as Centrifugo pages back through history.
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

    /// How many clients and users a channel's presence holds, without listing them.
    func presenceStats(channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<PresenceStats>

    /// Whether the engine can serve now.
    var health: RelayEngineHealth { get }

    /// Namespaces shared by every node using the engine; `nil` when each node keeps its own.
    var sharedNamespaces: (any SharedNamespaceStorage)? { get }

    /// Stops background work and closes connections; called once when the relay is retired.
    func shutdown() async
}

extension RelayEngine {
    public func presenceStats(channel: String, on eventLoop: any EventLoop) -> EventLoopFuture<PresenceStats> {
        self.presence(channel: channel, on: eventLoop).map { clients in
            PresenceStats(clients: clients.count, users: Set(clients.values.map(\.user)).count)
        }
    }

    public var health: RelayEngineHealth { .ready }

    public var sharedNamespaces: (any SharedNamespaceStorage)? { nil }

    public func shutdown() async {}
}

/// Namespaces kept where every node of a shared engine reads them (Redis), so a change made
/// through one node's HTTP API applies on all of them.
public protocol SharedNamespaceStorage: Sendable {
    /// The shared namespaces; `nil` when none were stored yet (each node keeps its own until the
    /// first change through the HTTP API).
    func load(on eventLoop: any EventLoop) -> EventLoopFuture<[String: NamespaceOptions]?>

    /// Applies `change` to the shared namespaces (to `initial` when none are stored yet) and
    /// stores the result, as one atomic change: if another node changed them meanwhile, `change`
    /// runs again on theirs. Nothing is stored when `change` throws.
    func update<Result: Sendable>(
        initial: [String: NamespaceOptions],
        on eventLoop: any EventLoop,
        _ change: @escaping @Sendable (inout [String: NamespaceOptions]) throws -> Result
    ) -> EventLoopFuture<(result: Result, namespaces: [String: NamespaceOptions])>

    /// Calls `handler` when the namespaces changed, or may have changed unseen.
    func onChange(_ handler: @escaping @Sendable () -> Void)
}

/// The engine's delivery closure, kept in a `NIOLockedValueBox` as this struct rather than as a
/// bare closure: `withLockedValue { $0 }` on a box of a closure type passes the closure `inout`
/// through the generic box, which reabstracts it on the way in and back and stores the result, so
/// every read wrapped the stored closure in two more thunks. Each delivery then ran through a
/// chain of thunks as long as the publications before it (CPU per message growing with uptime)
/// until the stack overflowed (a node crashed with SIGSEGV after about 21,000 publications). A
/// struct is passed `inout` by address, never reabstracted.
struct RelayEventHandler: Sendable {
    var call: (@Sendable (RelayEvent) -> Void)?
}
