public import NIOCore
public import NIOHTTP1

/// A request head parsed in place: byte ranges into the bytes it was parsed from, and the few
/// facts the gateway decides framing and routing on, decoded once.
///
/// Nothing is copied out of the receive buffer while parsing: no `String` per header. The
/// ranges are offsets from the first byte given to ``HTTP1RequestHeadParser/parse(_:)``; read
/// them from the same bytes (``method(in:)``, ``name(of:in:)``, ...), or materialise NIO's
/// `HTTPRequestHead` with ``makeHTTPRequestHead(from:)`` where a component wants one.
public struct HTTP1RequestHead: Sendable, Hashable {
    /// One header line: the name, and the value without leading and trailing whitespace.
    public struct Field: Sendable, Hashable {
        public var name: Range<Int>
        public var value: Range<Int>
    }

    /// How the body's end is found (RFC 9112 6.3).
    public enum Framing: Sendable, Hashable {
        /// No body.
        case none
        case contentLength(Int)
        case chunked
    }

    /// Tokens of the `Connection` fields the gateway acts on.
    public struct ConnectionOptions: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let close = ConnectionOptions(rawValue: 1)
        public static let keepAlive = ConnectionOptions(rawValue: 2)
        public static let upgrade = ConnectionOptions(rawValue: 4)
    }

    public var method: Range<Int>
    public var target: Range<Int>
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    public var fields: [Field]
    public var framing: Framing
    public var connection: ConnectionOptions
    /// Index in ``fields`` of the one `Host` field, if any.
    public var host: Int?
    /// Index in ``fields`` of the first `Expect` field, if any.
    public var expect: Int?
    /// Index in ``fields`` of the first `Upgrade` field, if any.
    public var upgrade: Int?
    /// Bytes of the head, including empty lines before the request line and the final CRLF.
    public var length: Int

    /// Whether the connection stays open after this exchange (RFC 9112 9.3).
    public var keepAlive: Bool {
        if self.connection.contains(.close) { return false }
        return self.minorVersion == 1 || self.connection.contains(.keepAlive)
    }

    public var version: HTTPVersion { HTTPVersion(major: 1, minor: self.minorVersion) }

    public func method(in bytes: ByteBuffer) -> HTTPMethod {
        HTTPMethod(rawValue: self.string(self.method, in: bytes))
    }

    public func target(in bytes: ByteBuffer) -> String { self.string(self.target, in: bytes) }

    public func name(of field: Field, in bytes: ByteBuffer) -> String { self.string(field.name, in: bytes) }

    public func value(of field: Field, in bytes: ByteBuffer) -> String { self.string(field.value, in: bytes) }

    /// NIO's form of this head, for code that wants names and values as strings.
    ///
    /// `bytes` are the bytes the head was parsed from (their reader index where parsing began).
    public func makeHTTPRequestHead(from bytes: ByteBuffer) -> HTTPRequestHead {
        var headers: [(String, String)] = []
        headers.reserveCapacity(self.fields.count)
        for field in self.fields {
            headers.append((self.name(of: field, in: bytes), self.value(of: field, in: bytes)))
        }
        return HTTPRequestHead(
            version: self.version,
            method: self.method(in: bytes),
            uri: self.target(in: bytes),
            headers: HTTPHeaders(headers)
        )
    }

    private func string(_ range: Range<Int>, in bytes: ByteBuffer) -> String {
        bytes.getString(at: bytes.readerIndex + range.lowerBound, length: range.count) ?? ""
    }
}
