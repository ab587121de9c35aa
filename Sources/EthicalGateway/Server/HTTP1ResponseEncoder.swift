import NIOCore
import NIOHTTP1

/// Writes HTTP/1.x responses as bytes for ``GatewayHTTPHandler``: the head straight into one
/// `ByteBuffer` (status line from a table, the head's fields, the gateway's own fields), the body
/// framed as the head says, and the chunked terminator with any trailers.
///
/// It takes the place of NIO's `HTTPResponseEncoder` on the HTTP/1.1 path, with the same framing
/// rules, except that what NIO's encoder learns from its paired request decoder (which
/// responses answer `HEAD` or `CONNECT`) is given by the handler, which knows each exchange's
/// request:
/// - a response that has no body (1xx, 204, 304, or one to `CONNECT`) loses `Content-Length`
///   and `Transfer-Encoding`;
/// - one that may have a body keeps its `Content-Length` and loses any `Transfer-Encoding`;
///   without a length it goes out `Transfer-Encoding: chunked` on HTTP/1.1, and on HTTP/1.0 it is
///   delimited by the connection's close (``isCloseDelimited(_:answering:)``; the handler closes);
/// - a response to `HEAD` keeps its framing fields (what a `GET` would have had) and sends no body.
///
/// The head is checked on the way by NIO's `NIOHTTPResponseHeadersValidator` rule
/// (``FieldBytes``): a field name that is not a token, or a value or reason phrase with a control
/// character, makes ``encodeHead(_:adding:answering:allocator:)`` return `nil`, and nothing is
/// written. Unlike NIO's, `Transfer-Encoding` never goes out on HTTP/1.0 (RFC 9112 6.1).
struct HTTP1ResponseEncoder {
    /// Fields the gateway sets on a response, written after the head's own fields in the same
    /// pass instead of being added to its `HTTPHeaders` first (which would copy them all).
    struct AddedFields {
        /// `X-Request-ID`, replacing any the head has.
        var requestID: String?
        /// `Strict-Transport-Security`, unless the head has one.
        var hsts: String?
        /// `Connection: close`, replacing any `Connection` field the head has.
        var connectionClose = false
    }

    /// Whether body parts of the response being written are framed as chunks.
    private(set) var isChunked = false

    /// Whether a response to `method` with this head can only end with the connection's close:
    /// an HTTP/1.0 response with a body and no `Content-Length`.
    static func isCloseDelimited(_ head: HTTPResponseHead, answering method: HTTPMethod) -> Bool {
        guard head.version.major < 1 || (head.version.major == 1 && head.version.minor == 0) else { return false }
        guard head.status.mayHaveResponseBody, method != .HEAD, method != .CONNECT else { return false }
        return !head.headers.contains(name: "content-length")
    }

    /// The head as bytes, with `added` after its own fields and the framing fields corrected;
    /// `nil` when a field or the reason phrase must not go on the wire.
    mutating func encodeHead(
        _ head: HTTPResponseHead,
        adding added: AddedFields,
        answering method: HTTPMethod,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer? {
        let statusLine = StatusLines.line(for: head.status, version: head.version)
        if statusLine == nil, case .custom(_, let phrase) = head.status, !FieldBytes.isValue(phrase) { return nil }
        let mayHaveBody = head.status.mayHaveResponseBody && method != .CONNECT
        let isHTTP11 = head.version.major > 1 || (head.version.major == 1 && head.version.minor >= 1)

        var size = (statusLine?.count ?? 96 + head.status.reasonPhrase.utf8.count) + 2
        for (name, value) in head.headers { size += name.utf8.count + value.utf8.count + 4 }
        if let requestID = added.requestID { size += 14 + requestID.utf8.count + 2 }
        if let hsts = added.hsts { size += 27 + hsts.utf8.count + 2 }
        size += 19 + 28  // "connection: close\r\n", "transfer-encoding: chunked\r\n"

        var buffer = allocator.buffer(capacity: size)
        var valid = true
        var hasContentLength = false
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            var out = FieldOutput(raw)
            if let statusLine {
                out.append(statusLine)
            } else {
                out.appendStatusLine(head.status, version: head.version)
            }
            var hasHSTS = false
            for (name, value) in head.headers {
                let keep = name.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
                    switch FieldName(bytes) {
                    case .requestID: return added.requestID == nil
                    case .connection: return !added.connectionClose
                    case .transferEncoding: return false
                    case .contentLength:
                        if mayHaveBody { hasContentLength = true }
                        return mayHaveBody
                    case .strictTransportSecurity:
                        hasHSTS = true
                        return true
                    case .other: return true
                    }
                }
                guard keep ?? true else { continue }
                guard out.appendField(name, value) else {
                    valid = false
                    return 0
                }
            }
            if let requestID = added.requestID, !out.appendField("x-request-id", requestID) {
                valid = false
                return 0
            }
            if let hsts = added.hsts, !hasHSTS, !out.appendField("strict-transport-security", hsts) {
                valid = false
                return 0
            }
            if added.connectionClose { out.append(staticString: "connection: close\r\n") }
            if mayHaveBody, !hasContentLength, isHTTP11 { out.append(staticString: "transfer-encoding: chunked\r\n") }
            out.append(staticString: "\r\n")
            return out.position
        }
        guard valid else { return nil }
        self.isChunked = mayHaveBody && !hasContentLength && isHTTP11 && method != .HEAD
        return buffer
    }

    /// The chunk-size line that goes before a body part of `length` bytes, when chunked.
    func chunkPrefix(length: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 18)
        var digits = 1
        while length >> (4 * digits) != 0 { digits += 1 }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: digits + 2) { raw in
            let hex: StaticString = "0123456789abcdef"
            for index in 0..<digits {
                let nibble = (length >> (4 * (digits - 1 - index))) & 0xF
                raw[index] = hex.utf8Start[nibble]
            }
            raw[digits] = 0x0D
            raw[digits + 1] = 0x0A
            return digits + 2
        }
        return buffer
    }

    /// The bytes that end the response: the last chunk with `trailers` when chunked (a trailer
    /// field that must not go on the wire is left out), else nothing.
    mutating func encodeEnd(trailers: HTTPHeaders?, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard self.isChunked else { return nil }
        self.isChunked = false
        guard let trailers, !trailers.isEmpty else { return ByteBuffer(staticString: "0\r\n\r\n") }
        var size = 5
        for (name, value) in trailers { size += name.utf8.count + value.utf8.count + 4 }
        var buffer = allocator.buffer(capacity: size)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            var out = FieldOutput(raw)
            out.append(staticString: "0\r\n")
            for (name, value) in trailers {
                let start = out.position
                if !out.appendField(name, value) { out.position = start }
            }
            out.append(staticString: "\r\n")
            return out.position
        }
        return buffer
    }
}

/// The response header names the encoder acts on, told apart by length first.
private enum FieldName {
    case requestID, connection, transferEncoding, contentLength, strictTransportSecurity, other

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        switch bytes.count {
        case 10 where Self.equal(bytes, "connection"): self = .connection
        case 12 where Self.equal(bytes, "x-request-id"): self = .requestID
        case 14 where Self.equal(bytes, "content-length"): self = .contentLength
        case 17 where Self.equal(bytes, "transfer-encoding"): self = .transferEncoding
        case 25 where Self.equal(bytes, "strict-transport-security"): self = .strictTransportSecurity
        default: self = .other
        }
    }

    /// ASCII case-insensitive; `lowercased` is lower case and as long as `bytes`.
    private static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ lowercased: StaticString) -> Bool {
        let expected = lowercased.utf8Start
        for index in 0..<bytes.count {
            var byte = bytes[index]
            if byte >= 0x41 && byte <= 0x5A { byte |= 0x20 }
            if byte != expected[index] { return false }
        }
        return true
    }
}

/// A cursor over the bytes of a head being written, sized beforehand.
private struct FieldOutput {
    let raw: UnsafeMutableRawBufferPointer
    var position = 0

    init(_ raw: UnsafeMutableRawBufferPointer) {
        self.raw = raw
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { self.append(rawBytes: $0) }
    }

    mutating func append(staticString: StaticString) {
        self.append(
            rawBytes: UnsafeRawBufferPointer(start: staticString.utf8Start, count: staticString.utf8CodeUnitCount)
        )
    }

    private mutating func append(rawBytes: UnsafeRawBufferPointer) {
        guard let base = rawBytes.baseAddress, !rawBytes.isEmpty else { return }
        precondition(self.position + rawBytes.count <= self.raw.count, "a response head outgrew its size")
        (self.raw.baseAddress! + self.position).copyMemory(from: base, byteCount: rawBytes.count)
        self.position += rawBytes.count
    }

    private mutating func append(string: String) {
        let copied = string.utf8.withContiguousStorageIfAvailable { self.append(rawBytes: UnsafeRawBufferPointer($0)) }
        if copied == nil {
            precondition(self.position + string.utf8.count <= self.raw.count, "a response head outgrew its size")
            for byte in string.utf8 {
                self.raw[self.position] = byte
                self.position += 1
            }
        }
    }

    /// `name: value\r\n`, or false (with part of it written) if either must not go on the wire.
    mutating func appendField(_ name: String, _ value: String) -> Bool {
        guard FieldBytes.isToken(name), FieldBytes.isValue(value) else { return false }
        self.append(string: name)
        self.append(staticString: ": ")
        self.append(string: value)
        self.append(staticString: "\r\n")
        return true
    }

    mutating func appendStatusLine(_ status: HTTPResponseStatus, version: HTTPVersion) {
        self.append(staticString: "HTTP/")
        self.append(string: String(version.major))
        self.append(staticString: ".")
        self.append(string: String(version.minor))
        self.append(staticString: " ")
        self.append(string: String(status.code))
        self.append(staticString: " ")
        self.append(string: status.reasonPhrase)
        self.append(staticString: "\r\n")
    }
}

/// Status lines of the statuses NIO names, for HTTP/1.1 and HTTP/1.0, made once.
private enum StatusLines {
    private static let http11: [[UInt8]] = (0..<600).map { code in
        let status = HTTPResponseStatus(statusCode: code)
        if case .custom = status { return [] }
        return Array("HTTP/1.1 \(code) \(status.reasonPhrase)\r\n".utf8)
    }
    private static let http10: [[UInt8]] = Self.http11.map { line in
        guard !line.isEmpty else { return [] }
        var line = line
        line[7] = UInt8(ascii: "0")
        return line
    }

    /// The line of a status NIO names (not `.custom`), for HTTP/1.1 and 1.0; else `nil`.
    static func line(for status: HTTPResponseStatus, version: HTTPVersion) -> [UInt8]? {
        if case .custom = status { return nil }
        let code = Int(status.code)
        guard version.major == 1, version.minor <= 1, code < 600 else { return nil }
        let line = version.minor == 1 ? Self.http11[code] : Self.http10[code]
        return line.isEmpty ? nil : line
    }
}
