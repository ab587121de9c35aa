public import NIOCore
public import NIOHTTP1

/// A response head parsed in place by ``HTTP1ResponseHeadParser``: byte ranges into the bytes it
/// was parsed from, and the status, version, framing and `Connection` options, decoded once.
///
/// Like ``HTTP1RequestHead``, nothing is copied out of the receive buffer while parsing; read the
/// ranges from the same bytes (their reader index where parsing began), or materialise NIO's
/// `HTTPResponseHead` with ``makeHTTPResponseHead(from:)``.
public struct HTTP1ResponseHead: Sendable, Hashable {
    public typealias Field = HTTP1RequestHead.Field
    public typealias ConnectionOptions = HTTP1RequestHead.ConnectionOptions

    /// How the body's end is found, as the head's fields say (RFC 9112 6.3). Whether a body
    /// follows at all also depends on the status and the request (``HTTP1ResponseDecoder``).
    public enum Framing: Sendable, Hashable {
        case contentLength(Int)
        case chunked
        /// Neither `Content-Length` nor `Transfer-Encoding`: the body ends when the connection
        /// closes.
        case untilClose
    }

    /// The status code, 100 to 599.
    public var status: Int
    /// The reason phrase (may be empty).
    public var reason: Range<Int>
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    public var fields: [Field]
    public var framing: Framing
    public var connection: ConnectionOptions
    /// Bytes of the head, including the final CRLF.
    public var length: Int

    /// Whether the connection stays open after this response (RFC 9112 9.3).
    public var keepAlive: Bool {
        if self.connection.contains(.close) { return false }
        return self.minorVersion == 1 || self.connection.contains(.keepAlive)
    }

    /// A 1xx response other than 101: the final response to the same request follows it.
    public var isInterim: Bool { self.status < 200 && self.status != 101 }

    /// Whether a body follows the head (RFC 9112 6.3): none for a response to `HEAD`, a 1xx, a
    /// 204 or a 304, whatever the fields say.
    public func hasBody(toHEAD: Bool) -> Bool {
        !toHEAD && self.status >= 200 && self.status != 204 && self.status != 304
    }

    /// Whether the connection can carry another request after this response: ``keepAlive``, and
    /// the body (if any) is not delimited by the connection's close.
    public func keepsConnection(toHEAD: Bool) -> Bool {
        self.keepAlive && !(self.framing == .untilClose && self.hasBody(toHEAD: toHEAD))
    }

    public var version: HTTPVersion { HTTPVersion(major: 1, minor: self.minorVersion) }

    public func name(of field: Field, in bytes: ByteBuffer) -> String { self.string(field.name, in: bytes) }

    public func value(of field: Field, in bytes: ByteBuffer) -> String { self.string(field.value, in: bytes) }

    /// NIO's form of this head, for code that wants names and values as strings.
    ///
    /// The status carries NIO's standard reason phrase for its code, not the one received (NIO's
    /// own decoder does the same: a reason phrase means nothing to a recipient, RFC 9112 4).
    /// `bytes` are the bytes the head was parsed from (their reader index where parsing began).
    public func makeHTTPResponseHead(from bytes: ByteBuffer) -> HTTPResponseHead {
        var headers: [(String, String)] = []
        headers.reserveCapacity(self.fields.count)
        for field in self.fields {
            headers.append((self.name(of: field, in: bytes), self.value(of: field, in: bytes)))
        }
        return HTTPResponseHead(
            version: self.version,
            status: HTTPResponseStatus(statusCode: self.status),
            headers: HTTPHeaders(headers)
        )
    }

    private func string(_ range: Range<Int>, in bytes: ByteBuffer) -> String {
        bytes.getString(at: bytes.readerIndex + range.lowerBound, length: range.count) ?? ""
    }
}
