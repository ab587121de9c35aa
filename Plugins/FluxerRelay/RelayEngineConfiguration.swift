public import EthicalGateway

/// Which engine keeps the relay's channels: the `engine` object of a `fluxer-relay` backend.
///
/// ```json
/// "engine": { "type": "memory" }
/// "engine": { "type": "redis", "addresses": ["redis://127.0.0.1:6379"], "prefix": "fluxer" }
/// ```
public struct RelayEngineConfiguration: Decodable, Sendable {
    /// The kinds of engine.
    public enum Kind: String, ConfigEnum {
        /// Streams, presence and delivery in this process: one node, the default.
        case memory
        /// Streams, presence, delivery and namespaces in Redis, shared by every node using the
        /// same addresses and prefix.
        case redis
    }

    /// `"memory"` (default) or `"redis"`.
    public var type: Kind
    /// Redis servers as `redis://[user[:password]@]host[:port][/db]` or `rediss://…` (TLS).
    /// Several addresses are independent shards: each channel lives on one, chosen by
    /// consistent hashing of its name. Every node must list the same addresses in the same
    /// order. Required for `"redis"`.
    public var addresses: [String]
    /// Prefix of every key and pub/sub channel the engine uses, so several relays can share a
    /// Redis. 1 to 64 letters, digits, `_`, `-` or `.`. Default `"fluxer"`.
    public var prefix: String
    /// ACL user name, overriding the addresses' own. Default: the address's, else none.
    public var username: String?
    /// A file holding the Redis password (a Docker secret, say), relative to the config's
    /// folder; overrides a password in the addresses. Default: the address's, else none.
    public var passwordFile: String?
    /// TLS towards `rediss://` addresses. Default: the system's trust store, verified.
    public var tls: RedisTLSSettings
    /// Seconds a presence entry lives unless the node that owns its connection refreshes it
    /// (every third of this), so clients of a node that crashed leave presence within it.
    /// 5 to 3600. Default 60.
    public var presenceTTLSeconds: Int
    /// Seconds a command may wait for Redis's answer before it fails. 0.05 to 60. Default 2.
    public var commandTimeoutSeconds: Double
    /// Seconds a connection to Redis may take to establish (TCP, TLS, `HELLO`). 0.05 to 60. Default 2.
    public var connectTimeoutSeconds: Double
    /// Seconds a channel's stream position (offset and epoch) is kept after its last use; its
    /// loss starts a new epoch. At least the longest `historyTTLSeconds`. Default 2592000 (30 days).
    public var streamMetaTTLSeconds: Int
    /// Whether to use sharded pub/sub (`SSUBSCRIBE`/`SPUBLISH`). Default: when the server
    /// supports it (Redis 7 or later).
    public var shardedPubSub: Bool?

    enum CodingKeys: String, CodingKey {
        case type, addresses, prefix, username, passwordFile, tls, presenceTTLSeconds, commandTimeoutSeconds
        case connectTimeoutSeconds, streamMetaTTLSeconds, shardedPubSub
    }

    /// The default: the in-memory engine.
    public init() {
        self.type = .memory
        self.addresses = []
        self.prefix = "fluxer"
        self.tls = RedisTLSSettings()
        self.presenceTTLSeconds = 60
        self.commandTimeoutSeconds = 2
        self.connectTimeoutSeconds = 2
        self.streamMetaTTLSeconds = 2_592_000
    }

    public init(from decoder: any Decoder) throws {
        self.init()
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.type = try container.decodeIfPresent(Kind.self, forKey: .type) ?? .memory
        self.addresses = try container.decodeIfPresent([String].self, forKey: .addresses) ?? []
        self.prefix = try container.decodeIfPresent(String.self, forKey: .prefix) ?? self.prefix
        self.username = try container.decodeIfPresent(String.self, forKey: .username)
        self.passwordFile = try container.decodeIfPresent(String.self, forKey: .passwordFile)
        self.tls = try container.decodeIfPresent(RedisTLSSettings.self, forKey: .tls) ?? self.tls
        self.presenceTTLSeconds =
            try container.decodeIfPresent(Int.self, forKey: .presenceTTLSeconds) ?? self.presenceTTLSeconds
        self.commandTimeoutSeconds =
            try container.decodeIfPresent(Double.self, forKey: .commandTimeoutSeconds) ?? self.commandTimeoutSeconds
        self.connectTimeoutSeconds =
            try container.decodeIfPresent(Double.self, forKey: .connectTimeoutSeconds) ?? self.connectTimeoutSeconds
        self.streamMetaTTLSeconds =
            try container.decodeIfPresent(Int.self, forKey: .streamMetaTTLSeconds) ?? self.streamMetaTTLSeconds
        self.shardedPubSub = try container.decodeIfPresent(Bool.self, forKey: .shardedPubSub)
        self.presentKeys = Set(container.allKeys.map(\.stringValue))
    }

    /// The keys the config set, so settings of the other engine type can be pointed out.
    private var presentKeys: Set<String> = []

    /// Every problem with the values, as (key under `engine`, message) pairs.
    func problems(namespaces: [String: NamespaceOptions]) -> [(key: String, message: String)] {
        var problems: [(key: String, message: String)] = []
        guard self.type == .redis else {
            for key in self.presentKeys.sorted() where key != CodingKeys.type.rawValue {
                problems.append((key, "only an engine of type \"redis\" takes \(key)"))
            }
            return problems
        }
        if self.addresses.isEmpty {
            problems.append(("addresses", "a redis engine needs at least one address, e.g. \"redis://127.0.0.1:6379\""))
        }
        var seen: Set<String> = []
        for (index, address) in self.addresses.enumerated() {
            if let problem = RedisAddress.problem(address) {
                problems.append(("addresses[\(index)]", problem))
            } else if !seen.insert(address).inserted {
                problems.append(("addresses[\(index)]", "\(RedisAddress.redacted(address)) is listed twice"))
            }
        }
        let prefixAllowed = self.prefix.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x5F || $0 == 0x2D
                || $0 == 0x2E
        }
        if self.prefix.isEmpty || self.prefix.utf8.count > 64 || !prefixAllowed {
            problems.append(("prefix", "expected 1 to 64 letters, digits, '_', '-' or '.', found \"\(self.prefix)\""))
        }
        if !(5...3600).contains(self.presenceTTLSeconds) {
            problems.append(("presenceTTLSeconds", "expected 5 to 3600 seconds, found \(self.presenceTTLSeconds)"))
        }
        if !(0.05...60).contains(self.commandTimeoutSeconds) {
            problems.append(
                ("commandTimeoutSeconds", "expected 0.05 to 60 seconds, found \(self.commandTimeoutSeconds)")
            )
        }
        if !(0.05...60).contains(self.connectTimeoutSeconds) {
            problems.append(
                ("connectTimeoutSeconds", "expected 0.05 to 60 seconds, found \(self.connectTimeoutSeconds)")
            )
        }
        let longestHistory = namespaces.values.map(\.historyTTLSeconds).max() ?? 0
        if self.streamMetaTTLSeconds < max(60, longestHistory) || self.streamMetaTTLSeconds > 31_536_000 {
            problems.append(
                (
                    "streamMetaTTLSeconds",
                    "expected \(max(60, longestHistory)) (the longest historyTTLSeconds, at least 60) to 31536000 seconds, found \(self.streamMetaTTLSeconds)"
                )
            )
        }
        return problems
    }
}

/// TLS towards Redis (`rediss://` addresses).
public struct RedisTLSSettings: Decodable, Sendable {
    /// PEM file of the certificate authorities to trust instead of the system's. Relative to the config.
    public var caFile: String?
    /// PEM client certificate (chain) for servers that require one (`tls-auth-clients yes`).
    public var certificateFile: String?
    /// PEM private key of `certificateFile`.
    public var keyFile: String?
    /// Name sent as SNI and checked against the certificate. Default: the address's host.
    public var serverName: String?
    /// Verify the server's certificate. Default `true`; `false` is for development only.
    public var verify: Bool

    public init() {
        self.verify = true
    }

    enum CodingKeys: String, CodingKey { case caFile, certificateFile, keyFile, serverName, verify }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.caFile = try container.decodeIfPresent(String.self, forKey: .caFile)
        self.certificateFile = try container.decodeIfPresent(String.self, forKey: .certificateFile)
        self.keyFile = try container.decodeIfPresent(String.self, forKey: .keyFile)
        self.serverName = try container.decodeIfPresent(String.self, forKey: .serverName)
        self.verify = try container.decodeIfPresent(Bool.self, forKey: .verify) ?? true
    }
}
