import Crypto

/// A Lua script known by its SHA1, for `EVALSHA` with a fallback to `EVAL`.
public struct RedisScript: Sendable {
    /// The Lua source.
    public let source: String
    /// The lowercase hex SHA1 of the source, as `SCRIPT LOAD` reports it.
    public let sha1: String

    /// A script with its SHA1 computed from `source`.
    public init(_ source: String) {
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
