public import EthicalGateway

/// Who may subscribe to a namespace's channels.
public enum SubscribePermission: String, ConfigEnum, Encodable {
    /// Every connection, anonymous ones included (when the relay allows anonymous connections).
    case any
    /// Every connection with a user (a verified token with a subject).
    case authenticated
    /// Connections whose token lists the channel in its channels claim (exact or `prefix*`).
    case claim
    /// Nobody through the WebSocket API; only user-limited channels (`name#user`) of the user.
    case none
}

/// Who may publish to a namespace's channels over the WebSocket API (the HTTP API always may).
public enum PublishPermission: String, ConfigEnum, Encodable {
    /// Nobody: only services publish, through the HTTP API.
    case none
    /// Connections subscribed to the channel.
    case subscribers
    /// Connections that may subscribe and whose token has the publish scope.
    case scope
    /// Every connection that may subscribe.
    case any
}

/// What happens when a connection cannot take publications as fast as they come.
public enum SlowConsumerPolicy: String, ConfigEnum, Encodable {
    /// Drop the oldest queued publications and unsubscribe the affected channels with code 2500
    /// (insufficient state): the client subscribes again and recovers the rest from history.
    case dropOldest
    /// Disconnect with code 3008 (slow); the client reconnects and recovers.
    case disconnect
}

/// The options of a channel namespace: `chat:room-1` belongs to namespace `chat`, a channel
/// without `:` to the namespace named `default`.
public struct NamespaceOptions: Decodable, Encodable, Sendable, Equatable {
    /// Who may subscribe. Default `"authenticated"`.
    public var subscribe: SubscribePermission
    /// Who may publish over the WebSocket API. Default `"none"`.
    public var publish: PublishPermission
    /// Whether clients may ask who is subscribed (`presence`, `presence_stats`). Default `false`.
    public var presence: Bool
    /// Whether subscribers get `join` and `leave` pushes. Needs `presence`. Default `false`.
    public var joinLeave: Bool
    /// Publications kept per channel for `history` and recovery; 0 keeps none. Default 0.
    public var historySize: Int
    /// How long a channel's history is kept after its last publication, in seconds. Default 300.
    public var historyTTLSeconds: Int
    /// Whether subscribers may recover missed publications from history after a reconnect.
    /// Needs `historySize` > 0. Default `true` when the namespace keeps history.
    public var recovery: Bool
    /// What to do with a subscriber that cannot keep up. Default `"dropOldest"`.
    public var slowConsumer: SlowConsumerPolicy
    /// Whether the channels a connection token names in its channels claim (exact names, not
    /// `prefix*` grants) are server-side subscriptions: the relay subscribes the connection to
    /// them when it connects, as Centrifugo does with the `channels` claim, and reports them
    /// in the connect result's `subs`. Uni-directional clients (SSE, HTTP streaming) can only
    /// have these. When `false`, claim entries in this namespace only grant `subscribe`
    /// (with `"subscribe": "claim"`). Default `false`.
    public var serverSideSubscriptions: Bool

    enum CodingKeys: String, CodingKey {
        case subscribe, publish, presence, joinLeave, historySize, historyTTLSeconds, recovery, slowConsumer
        case serverSideSubscriptions
    }

    public init(
        subscribe: SubscribePermission = .authenticated,
        publish: PublishPermission = .none,
        presence: Bool = false,
        joinLeave: Bool = false,
        historySize: Int = 0,
        historyTTLSeconds: Int = 300,
        recovery: Bool? = nil,
        slowConsumer: SlowConsumerPolicy = .dropOldest,
        serverSideSubscriptions: Bool = false
    ) {
        self.subscribe = subscribe
        self.publish = publish
        self.presence = presence
        self.joinLeave = joinLeave
        self.historySize = historySize
        self.historyTTLSeconds = historyTTLSeconds
        self.recovery = recovery ?? (historySize > 0)
        self.slowConsumer = slowConsumer
        self.serverSideSubscriptions = serverSideSubscriptions
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let historySize = try container.decodeIfPresent(Int.self, forKey: .historySize) ?? 0
        self.init(
            subscribe: try container.decodeIfPresent(SubscribePermission.self, forKey: .subscribe) ?? .authenticated,
            publish: try container.decodeIfPresent(PublishPermission.self, forKey: .publish) ?? .none,
            presence: try container.decodeIfPresent(Bool.self, forKey: .presence) ?? false,
            joinLeave: try container.decodeIfPresent(Bool.self, forKey: .joinLeave) ?? false,
            historySize: historySize,
            historyTTLSeconds: try container.decodeIfPresent(Int.self, forKey: .historyTTLSeconds) ?? 300,
            recovery: try container.decodeIfPresent(Bool.self, forKey: .recovery),
            slowConsumer: try container.decodeIfPresent(SlowConsumerPolicy.self, forKey: .slowConsumer) ?? .dropOldest,
            serverSideSubscriptions: try container.decodeIfPresent(Bool.self, forKey: .serverSideSubscriptions) ?? false
        )
    }

    /// The largest history a namespace may keep per channel.
    public static let maxHistorySize = 100_000

    /// Every problem with these options, as (key, message) pairs.
    public func problems() -> [(key: String, message: String)] {
        var problems: [(key: String, message: String)] = []
        if !(0...Self.maxHistorySize).contains(self.historySize) {
            problems.append(("historySize", "expected 0 to \(Self.maxHistorySize), found \(self.historySize)"))
        }
        if !(1...86_400 * 30).contains(self.historyTTLSeconds) {
            problems.append(("historyTTLSeconds", "expected 1 to 2592000 seconds, found \(self.historyTTLSeconds)"))
        }
        if self.recovery && self.historySize == 0 {
            problems.append(("recovery", "recovery needs history: set historySize above 0"))
        }
        if self.joinLeave && !self.presence {
            problems.append(("joinLeave", "join and leave pushes need presence: set presence to true"))
        }
        return problems
    }

    /// Whether `name` can name a namespace: 1 to 64 letters, digits, `_` and `-`.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x5F || $0 == 0x2D
            }
    }
}
