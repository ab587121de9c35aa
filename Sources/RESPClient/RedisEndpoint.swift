/// Where a Redis server is, parsed from `redis://[user[:password]@]host[:port][/db]`, or `rediss://` for TLS.
///
/// ```swift
/// let endpoint = try RedisEndpoint(url: "rediss://alice:secret@cache.internal:6380/2")
/// ```
public struct RedisEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// The host name or IP address (IPv6 without brackets).
    public var host: String
    /// The TCP port; 6379 when the URL has none.
    public var port: Int
    /// Whether to speak TLS (`rediss://`).
    public var useTLS: Bool
    /// The ACL user name from the URL, if any.
    public var username: String?
    /// The password from the URL, if any (percent-decoded).
    public var password: String?
    /// The database number selected after connecting.
    public var database: Int

    /// Parses a `redis://` or `rediss://` URL; throws an error that says what is wrong with it.
    public init(url: String) throws {
        let scheme: Substring
        var rest: Substring
        if let range = url.firstRange(of: "://") {
            scheme = url[..<range.lowerBound]
            rest = url[range.upperBound...]
        } else {
            throw RedisEndpointError("'\(url)' is not a Redis URL: expected redis://host[:port][/db] or rediss://...")
        }
        switch scheme.lowercased() {
        case "redis": self.useTLS = false
        case "rediss": self.useTLS = true
        default: throw RedisEndpointError("Redis URL scheme '\(scheme)' is not supported: use redis:// or rediss://")
        }
        self.username = nil
        self.password = nil
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                let user = Self.percentDecoded(userInfo[..<colon])
                self.username = user.isEmpty ? nil : user
                self.password = Self.percentDecoded(userInfo[userInfo.index(after: colon)...])
            } else if !userInfo.isEmpty {
                self.username = Self.percentDecoded(userInfo)
            }
        }
        var hostPort = rest
        self.database = 0
        if let slash = rest.firstIndex(of: "/") {
            hostPort = rest[..<slash]
            let path = rest[rest.index(after: slash)...]
            if !path.isEmpty {
                guard let database = Int(path), database >= 0 else {
                    throw RedisEndpointError("Redis URL database '\(path)' is not a non-negative number")
                }
                self.database = database
            }
        }
        self.port = 6379
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw RedisEndpointError("Redis URL host '\(hostPort)' has an unclosed '['")
            }
            self.host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let afterHost = hostPort[hostPort.index(after: close)...]
            if !afterHost.isEmpty {
                guard afterHost.hasPrefix(":") else {
                    throw RedisEndpointError(
                        "Redis URL has '\(afterHost)' after the IPv6 host where ':port' was expected"
                    )
                }
                self.port = try Self.parsePort(afterHost.dropFirst())
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            self.host = String(hostPort[..<colon])
            self.port = try Self.parsePort(hostPort[hostPort.index(after: colon)...])
        } else {
            self.host = String(hostPort)
        }
        guard !self.host.isEmpty else {
            throw RedisEndpointError("Redis URL '\(self.description)' has no host")
        }
    }

    /// The URL without the password, fit for logs.
    public var description: String {
        var url = self.useTLS ? "rediss://" : "redis://"
        if let username = self.username {
            url += username + "@"
        } else if self.password != nil {
            url += ":***@"
        }
        url += self.host.contains(":") ? "[\(self.host)]" : self.host
        url += ":\(self.port)"
        if self.database != 0 { url += "/\(self.database)" }
        return url
    }

    private static func parsePort(_ text: Substring) throws -> Int {
        guard let port = Int(text), (1...65535).contains(port) else {
            throw RedisEndpointError("Redis URL port '\(text)' is not a number from 1 to 65535")
        }
        return port
    }

    private static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A Redis URL that could not be parsed; the description says what is wrong.
public struct RedisEndpointError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong with the URL.
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
