/// Configuration of a `fluxer-relay` backend. Every field has a default; `{}` is a working relay
/// whose clients connect with a token the route's `auth` verified.
public struct RelayConfiguration: Decodable, Sendable {
    /// Issuers (names under the top-level `issuers`) whose tokens `connect` and `refresh`
    /// commands, and the HTTP API, may carry. Default: none (only the upgrade request's token,
    /// verified by the route's `auth`, identifies a connection).
    public var issuers: [String]
    /// Whether a connection without any token is accepted (with an empty user). Default `false`.
    public var allowAnonymous: Bool
    /// A file holding the HTTP API key (sent as `X-API-Key` or `Authorization: apikey KEY`);
    /// relative to the config's folder. Default: no key, the API needs a token with `apiScope`.
    public var apiKeyFile: String?
    /// The scope a token needs to use the HTTP API. Default `"relay:admin"`.
    public var apiScope: String
    /// The scope a token needs to publish where a namespace's `publish` is `"scope"`. Default `"relay:publish"`.
    public var publishScope: String
    /// The claim listing the channels a user may subscribe to where `subscribe` is `"claim"`
    /// (exact names, or a prefix ending in `*`). Default `"channels"`.
    public var channelsClaim: String
    /// Seconds between server pings (`{}`); the client answers each with `{}`. Default 25.
    public var pingIntervalSeconds: Int
    /// Seconds a client has to answer a ping before it is disconnected with 3012 (no pong). Default 10.
    public var pongTimeoutSeconds: Int
    /// Seconds a new WebSocket has to send `connect`. Default 10.
    public var connectTimeoutSeconds: Int
    /// The largest WebSocket message a client may send, in bytes (larger: close 1009), counted
    /// after joining its fragments and inflating it. Also the largest publication `data`
    /// accepted over the HTTP API. Default 65536.
    public var maxMessageBytes: Int
    /// Whether to accept a client's `permessage-deflate` offer (RFC 7692) for the messages it
    /// sends; the relay answers with `client_no_context_takeover`, so an idle connection keeps
    /// no decompressor, and sends its own frames uncompressed. Default `true`.
    public var permessageDeflate: Bool
    /// Bytes queued for one connection that cannot write before the namespace's slow-consumer
    /// policy applies. Default 1048576 (1 MiB).
    public var maxQueuedBytes: Int
    /// The kernel's send buffer (`SO_SNDBUF`) of each client connection, in bytes. Smaller
    /// bounds the kernel memory a stalled client holds and lets the slow-consumer policy apply
    /// sooner. Default: the kernel's own (autotuned, up to `net.ipv4.tcp_wmem`'s maximum).
    public var sendBufferBytes: Int?
    /// Commands a connection may send per second, on average (token bucket). Default 100.
    public var commandsPerSecond: Int
    /// Commands a connection may send in a burst above the rate. Default 200.
    public var commandBurst: Int
    /// Subscriptions one connection may hold. Default 256.
    public var maxSubscriptionsPerConnection: Int
    /// Connections one user may hold at once on this relay; 0 is unlimited. Default 0.
    public var maxConnectionsPerUser: Int
    /// How long an idempotency key of a publish is remembered, in seconds. Default 300.
    public var idempotencyWindowSeconds: Int
    /// On shutdown, clients are told to reconnect spread over this many seconds, so they do not
    /// all come back at once. Default 2.
    public var shutdownSpreadSeconds: Double
    /// Where channels live: `{"type": "memory"}` (default, one node) or `{"type": "redis", …}`
    /// (every node with the same Redis serves every channel); see ``RelayEngineConfiguration``.
    public var engine: RelayEngineConfiguration
    /// Channel namespaces by name. `default` holds channels without a `namespace:` prefix.
    /// Namespaces changed through the HTTP API are persisted in the gateway's state folder and
    /// win over these on restart. Default: a `default` namespace with default options.
    public var namespaces: [String: NamespaceOptions]

    enum CodingKeys: String, CodingKey {
        case issuers, allowAnonymous, apiKeyFile, apiScope, publishScope, channelsClaim, pingIntervalSeconds
        case pongTimeoutSeconds, connectTimeoutSeconds, maxMessageBytes, permessageDeflate, maxQueuedBytes,
            sendBufferBytes
        case commandsPerSecond
        case commandBurst, maxSubscriptionsPerConnection, maxConnectionsPerUser, idempotencyWindowSeconds
        case shutdownSpreadSeconds, namespaces, engine
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try container.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        self.issuers = try value(.issuers, [])
        self.allowAnonymous = try value(.allowAnonymous, false)
        self.apiKeyFile = try container.decodeIfPresent(String.self, forKey: .apiKeyFile)
        self.apiScope = try value(.apiScope, "relay:admin")
        self.publishScope = try value(.publishScope, "relay:publish")
        self.channelsClaim = try value(.channelsClaim, "channels")
        self.pingIntervalSeconds = try value(.pingIntervalSeconds, 25)
        self.pongTimeoutSeconds = try value(.pongTimeoutSeconds, 10)
        self.connectTimeoutSeconds = try value(.connectTimeoutSeconds, 10)
        self.maxMessageBytes = try value(.maxMessageBytes, 65536)
        self.permessageDeflate = try value(.permessageDeflate, true)
        self.maxQueuedBytes = try value(.maxQueuedBytes, 1 << 20)
        self.sendBufferBytes = try container.decodeIfPresent(Int.self, forKey: .sendBufferBytes)
        self.commandsPerSecond = try value(.commandsPerSecond, 100)
        self.commandBurst = try value(.commandBurst, 200)
        self.maxSubscriptionsPerConnection = try value(.maxSubscriptionsPerConnection, 256)
        self.maxConnectionsPerUser = try value(.maxConnectionsPerUser, 0)
        self.idempotencyWindowSeconds = try value(.idempotencyWindowSeconds, 300)
        self.shutdownSpreadSeconds = try value(.shutdownSpreadSeconds, 2)
        self.namespaces = try value(.namespaces, ["default": NamespaceOptions()])
        self.engine = try value(.engine, RelayEngineConfiguration())
    }

    /// Every problem with the values, as (key, message) pairs; namespace keys are nested.
    func problems() -> [(key: String, message: String)] {
        var problems: [(key: String, message: String)] = []
        func positive(_ key: String, _ value: Int, max: Int = Int.max) {
            if value < 1 || value > max { problems.append((key, "expected 1 to \(max), found \(value)")) }
        }
        positive("pingIntervalSeconds", self.pingIntervalSeconds, max: 3600)
        positive("pongTimeoutSeconds", self.pongTimeoutSeconds, max: 3600)
        positive("connectTimeoutSeconds", self.connectTimeoutSeconds, max: 3600)
        positive("maxMessageBytes", self.maxMessageBytes, max: 16 << 20)
        positive("maxQueuedBytes", self.maxQueuedBytes, max: 1 << 30)
        if let sendBufferBytes = self.sendBufferBytes { positive("sendBufferBytes", sendBufferBytes, max: 64 << 20) }
        positive("commandsPerSecond", self.commandsPerSecond)
        positive("commandBurst", self.commandBurst)
        positive("maxSubscriptionsPerConnection", self.maxSubscriptionsPerConnection)
        positive("idempotencyWindowSeconds", self.idempotencyWindowSeconds, max: 86_400)
        if self.maxConnectionsPerUser < 0 {
            problems.append(
                ("maxConnectionsPerUser", "expected 0 (unlimited) or more, found \(self.maxConnectionsPerUser)")
            )
        }
        if !(0...60).contains(self.shutdownSpreadSeconds) {
            problems.append(("shutdownSpreadSeconds", "expected 0 to 60 seconds, found \(self.shutdownSpreadSeconds)"))
        }
        for problem in self.engine.problems(namespaces: self.namespaces) {
            problems.append(("engine.\(problem.key)", problem.message))
        }
        for (name, options) in self.namespaces.sorted(by: { $0.key < $1.key }) {
            if !NamespaceOptions.isValidName(name) {
                problems.append(("namespaces.\(name)", "a namespace name is 1 to 64 letters, digits, '_' or '-'"))
            }
            for problem in options.problems() {
                problems.append(("namespaces.\(name).\(problem.key)", problem.message))
            }
        }
        return problems
    }
}
