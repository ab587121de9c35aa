public import NIOCore
public import NIOSSL

/// How to reach and talk to a Redis server; start from ``init(endpoint:)`` and adjust.
public struct RedisClientConfiguration: Sendable {
    /// The server, with the URL's credentials and database.
    public var endpoint: RedisEndpoint
    /// The ACL user name; overrides the URL's.
    public var username: String?
    /// The password; overrides the URL's (for example one read from a password file by the caller).
    public var password: String?
    /// The TLS settings used when `endpoint.useTLS`; `nil` means `TLSConfiguration.makeClientConfiguration()`.
    public var tls: TLSConfiguration?
    /// The name sent as SNI and checked against the server's certificate; default: the endpoint's
    /// host (no SNI for an IP address, whose certificate is checked against the address).
    public var serverName: String?
    /// The limit on connecting, TLS and the handshake together.
    public var connectTimeout: TimeAmount = .seconds(2)
    /// The limit on waiting for one reply; a connection whose reply is late is closed.
    public var commandTimeout: TimeAmount = .seconds(2)
    /// The longest wait before the first reconnect attempt.
    public var reconnectMinBackoff: TimeAmount = .milliseconds(100)
    /// The cap of the exponential backoff (with full jitter) between reconnect attempts.
    public var reconnectMaxBackoff: TimeAmount = .seconds(5)
    /// The protocol asked for first: 3 sends `HELLO 3` and falls back to RESP2; 2 goes straight to RESP2.
    public var preferredProtocol: Int = 3
    /// The largest bulk string accepted from the server; a larger one is a protocol error.
    public var maxBulkLength: Int = 64 * 1024 * 1024
    /// The deepest nesting of aggregates accepted from the server.
    public var maxNestingDepth: Int = 32

    /// A configuration with defaults for `endpoint`.
    public init(endpoint: RedisEndpoint) {
        self.endpoint = endpoint
    }

    /// The user name to send: the configuration's, else the URL's.
    var effectiveUsername: String? { self.username ?? self.endpoint.username }
    /// The password to send: the configuration's, else the URL's.
    var effectivePassword: String? { self.password ?? self.endpoint.password }
}
