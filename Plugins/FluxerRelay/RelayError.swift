/// A command error of the Centrifugal client protocol v2: the reply carries
/// `{"error": {"code": …, "message": …}}` and the connection stays open.
public struct RelayError: Error, Sendable, Equatable {
    public let code: Int
    public let message: String
    /// Whether retrying the same command later may succeed.
    public let temporary: Bool

    public init(code: Int, message: String, temporary: Bool = false) {
        self.code = code
        self.message = message
        self.temporary = temporary
    }

    public static let `internal` = RelayError(code: 100, message: "internal server error", temporary: true)
    public static let unauthorized = RelayError(code: 101, message: "unauthorized")
    public static let unknownChannel = RelayError(code: 102, message: "unknown channel")
    public static let permissionDenied = RelayError(code: 103, message: "permission denied")
    public static let methodNotFound = RelayError(code: 104, message: "method not found")
    public static let alreadySubscribed = RelayError(code: 105, message: "already subscribed")
    public static let limitExceeded = RelayError(code: 106, message: "limit exceeded")
    public static let badRequest = RelayError(code: 107, message: "bad request")
    public static let notAvailable = RelayError(code: 108, message: "not available")
    public static let tokenExpired = RelayError(code: 109, message: "token expired")
    public static let expired = RelayError(code: 110, message: "expired")
    public static let tooManyRequests = RelayError(code: 111, message: "too many requests", temporary: true)
    public static let unrecoverablePosition = RelayError(code: 112, message: "unrecoverable position")

    /// Error 100 (internal, temporary: the client retries) for a failed engine call; the
    /// message says so when the engine was unavailable, without internal details otherwise.
    public init(engineFailure error: any Error) {
        if let unavailable = error as? RelayEngineUnavailable {
            self.init(code: 100, message: "internal server error: \(unavailable.reason); retry", temporary: true)
        } else {
            self = .internal
        }
    }

    /// The same code with a more specific message.
    public func with(message: String) -> RelayError {
        RelayError(code: self.code, message: message, temporary: self.temporary)
    }
}

/// Why the relay closes a connection: sent as the WebSocket close code and reason. Codes from
/// 3000 to 3499 tell the client to reconnect; 3500 to 3999 tell it not to.
public struct RelayDisconnect: Error, Sendable, Equatable {
    public let code: UInt16
    public let reason: String

    public init(code: UInt16, reason: String) {
        self.code = code
        self.reason = reason
    }

    /// Whether the client should reconnect.
    public var reconnect: Bool { !(3500..<4000).contains(self.code) }

    public static let shutdown = RelayDisconnect(code: 3001, reason: "shutdown")
    public static let serverError = RelayDisconnect(code: 3004, reason: "internal server error")
    public static let expired = RelayDisconnect(code: 3005, reason: "connection expired")
    public static let slow = RelayDisconnect(code: 3008, reason: "slow")
    public static let writeError = RelayDisconnect(code: 3009, reason: "write error")
    public static let insufficientState = RelayDisconnect(code: 3010, reason: "insufficient state")
    public static let forceReconnect = RelayDisconnect(code: 3011, reason: "force reconnect")
    public static let noPong = RelayDisconnect(code: 3012, reason: "no pong")
    public static let tooManyRequests = RelayDisconnect(code: 3013, reason: "too many requests")
    public static let invalidToken = RelayDisconnect(code: 3500, reason: "invalid token")
    public static let badRequest = RelayDisconnect(code: 3501, reason: "bad request")
    public static let stale = RelayDisconnect(code: 3502, reason: "stale")
    public static let forceNoReconnect = RelayDisconnect(code: 3503, reason: "force disconnect")
    public static let connectionLimit = RelayDisconnect(code: 3504, reason: "connection limit")
    public static let channelLimit = RelayDisconnect(code: 3505, reason: "channel limit")
    public static let inappropriateProtocol = RelayDisconnect(code: 3506, reason: "inappropriate protocol")
    public static let permissionDenied = RelayDisconnect(code: 3507, reason: "permission denied")
}

/// Why the relay ends one subscription: an `unsubscribe` push. Codes from 2500 up tell the
/// client to subscribe again (and recover what it missed).
struct RelayUnsubscribe: Sendable {
    let code: Int
    let reason: String

    static let server = RelayUnsubscribe(code: 2000, reason: "server unsubscribe")
    static let insufficientState = RelayUnsubscribe(code: 2500, reason: "insufficient state")
    static let expired = RelayUnsubscribe(code: 2501, reason: "subscription expired")
}

/// An engine call failed because the engine cannot be reached (Redis down or reconnecting):
/// temporary, the same call may succeed later.
public struct RelayEngineUnavailable: Error, Sendable, CustomStringConvertible {
    /// What is unavailable, e.g. `the relay's Redis at redis://10.0.0.5:6379 is unavailable`.
    public let reason: String

    public init(reason: String) {
        self.reason = reason
    }

    public var description: String { self.reason }
}
