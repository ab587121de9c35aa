/// An error reply from the server, such as `NOSCRIPT No matching script` or `WRONGTYPE ...`.
public struct RedisServerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The whole error line as the server sent it.
    public let message: String

    /// Creates an error from the server's error line.
    public init(message: String) {
        self.message = message
    }

    /// The first word of the message, such as `NOSCRIPT`, `WRONGTYPE` or `ERR`.
    public var code: String {
        String(self.message.prefix { $0 != " " })
    }

    public var description: String {
        "Redis server error: \(self.message)"
    }
}
