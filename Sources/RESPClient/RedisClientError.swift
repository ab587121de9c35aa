/// A failure on the client's side: no connection, a timeout, or a broken reply stream.
public struct RedisClientError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Kind: Sendable, Equatable {
        case unavailable
        case connectTimeout
        case commandTimeout
        case connectionClosed
        case protocolError(String)
        case authenticationFailed(String)
        case shutdown
    }

    private let kind: Kind

    private init(_ kind: Kind) {
        self.kind = kind
    }

    /// Not connected (or reconnecting): commands fail fast instead of queueing while the server is down.
    public static let unavailable = RedisClientError(.unavailable)
    /// Connecting, including the handshake, took longer than the configured connect timeout.
    public static let connectTimeout = RedisClientError(.connectTimeout)
    /// No reply came within the configured command timeout; the connection was closed.
    public static let commandTimeout = RedisClientError(.commandTimeout)
    /// The connection closed before the reply came.
    public static let connectionClosed = RedisClientError(.connectionClosed)
    /// The client or subscriber was shut down.
    public static let shutdown = RedisClientError(.shutdown)

    /// The server sent bytes that are not valid RESP, or a reply too large or too deeply nested.
    public static func protocolError(_ detail: String) -> RedisClientError {
        RedisClientError(.protocolError(detail))
    }

    /// The server refused the credentials (or asked for some that were not configured).
    public static func authenticationFailed(_ detail: String) -> RedisClientError {
        RedisClientError(.authenticationFailed(detail))
    }

    /// Whether this is an authentication failure, whatever the server's message.
    public var isAuthenticationFailure: Bool {
        if case .authenticationFailed = self.kind { return true }
        return false
    }

    /// Whether this is a protocol error, whatever its detail.
    public var isProtocolError: Bool {
        if case .protocolError = self.kind { return true }
        return false
    }

    public var description: String {
        switch self.kind {
        case .unavailable: return "Redis unavailable: not connected"
        case .connectTimeout: return "Redis connect timed out"
        case .commandTimeout: return "Redis command timed out"
        case .connectionClosed: return "Redis connection closed"
        case .protocolError(let detail): return "Redis protocol error: \(detail)"
        case .authenticationFailed(let detail): return "Redis authentication failed: \(detail)"
        case .shutdown: return "Redis client was shut down"
        }
    }
}
