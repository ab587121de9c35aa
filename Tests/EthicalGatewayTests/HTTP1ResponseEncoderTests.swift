import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import EthicalGateway

/// The gateway writes HTTP/1.x responses as bytes (``HTTP1ResponseEncoder``) instead of through
/// NIO's `HTTPResponseEncoder`: for every head the bytes must be what NIO's encoder, paired with
/// its request decoder as `configureHTTPServerPipeline` sets them up, wrote for the same request
/// and the head built as `HTTPHeaders` the way ``GatewayHTTPHandler`` built it before.
@Suite("HTTP/1.x responses written as bytes: the same bytes as NIO's encoder, framing by status and method")
struct HTTP1ResponseEncoderTests {
    /// What NIO's paired decoder and encoder write for `head` (and `body`, then the end) as the
    /// answer to a `method` request.
    static func nioBytes(_ head: HTTPResponseHead, body: String?, answering method: HTTPMethod) throws -> String {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withPipeliningAssistance: false,
            withErrorHandling: false,
            withOutboundHeaderValidation: false
        )
        try channel.writeInbound(ByteBuffer(string: "\(method.rawValue) / HTTP/1.1\r\nHost: a\r\n\r\n"))
        while try channel.readInbound(as: HTTPServerRequestPart.self) != nil {}
        channel.write(HTTPServerResponsePart.head(head), promise: nil)
        if let body { channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil) }
        channel.write(HTTPServerResponsePart.end(nil), promise: nil)
        channel.flush()
        var text = ""
        while let part = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = part { text += String(buffer: buffer) }
        }
        return text
    }

    /// What ``HTTP1ResponseEncoder`` writes for the same, the body framed as the handler frames it.
    static func ownBytes(
        _ head: HTTPResponseHead,
        adding added: HTTP1ResponseEncoder.AddedFields = .init(),
        body: String?,
        answering method: HTTPMethod
    ) throws -> String {
        var encoder = HTTP1ResponseEncoder()
        let allocator = ByteBufferAllocator()
        let encoded = encoder.encodeHead(head, adding: added, answering: method, allocator: allocator)
        var text = String(buffer: try #require(encoded))
        if let body {
            if encoder.isChunked {
                text +=
                    String(buffer: encoder.chunkPrefix(length: body.utf8.count, allocator: allocator)) + body + "\r\n"
            } else {
                text += body
            }
        }
        if let end = encoder.encodeEnd(trailers: nil, allocator: allocator) { text += String(buffer: end) }
        return text
    }

    /// What a fresh encoder makes of `head` answering a GET.
    static func encodes(_ head: HTTPResponseHead, adding added: HTTP1ResponseEncoder.AddedFields) -> ByteBuffer? {
        var encoder = HTTP1ResponseEncoder()
        return encoder.encodeHead(head, adding: added, answering: .GET, allocator: ByteBufferAllocator())
    }

    /// `text` without the header lines named `name` (lower case).
    static func withoutLines(named name: String, in text: String) -> String {
        text.components(separatedBy: "\r\n").filter { !$0.lowercased().hasPrefix(name + ":") }.joined(separator: "\r\n")
    }

    static let statuses: [HTTPResponseStatus] = [
        .continue, .switchingProtocols, .ok, .created, .noContent, .partialContent, .movedPermanently, .notModified,
        .badRequest, .notFound, .requestHeaderFieldsTooLarge, .internalServerError, .badGateway, .gatewayTimeout,
        .custom(code: 299, reasonPhrase: "Odd"), .custom(code: 200, reasonPhrase: "Fine"),
        HTTPResponseStatus(statusCode: 599), .custom(code: 103, reasonPhrase: "Early Hints"),
    ]

    static let fieldSets: [[(String, String)]] = [
        [],
        [("Content-Length", "5")],
        [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")],
        [("transfer-encoding", "gzip"), ("content-length", "5"), ("Date", "Mon, 30 Nov 2026 06:00:00 GMT")],
        [("X-Request-ID", "upstream-id"), ("Connection", "keep-alive"), ("Strict-Transport-Security", "max-age=1")],
        [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("CONTENT-LENGTH", "5"), ("x-obs", "caf\u{E9} \t tab")],
        [("Keep-Alive", "timeout=5"), ("Server", "nginx"), ("Vary", "Accept-Encoding"), ("ETag", "\"x\"")],
    ]

    @Test("the head, body framing and end are NIO's bytes over statuses, versions, fields and HEAD")
    func sameBytesAsNIO() throws {
        var compared = 0
        for status in Self.statuses {
            for fields in Self.fieldSets {
                for version in [HTTPVersion.http1_1, .http1_0] {
                    for method in [HTTPMethod.GET, .HEAD, .POST] {
                        let head = HTTPResponseHead(version: version, status: status, headers: HTTPHeaders(fields))
                        let hasBody = status.mayHaveResponseBody && method != .HEAD
                        let body = hasBody ? "hello" : nil
                        var expected = try Self.nioBytes(head, body: body, answering: method)
                        if version == .http1_0 {
                            // The one deliberate difference: no Transfer-Encoding on HTTP/1.0
                            // (RFC 9112 6.1), where NIO keeps one that came without a length.
                            expected = Self.withoutLines(named: "transfer-encoding", in: expected)
                        }
                        let own = try Self.ownBytes(head, body: body, answering: method)
                        #expect(own == expected, "\(version) \(status) \(method) \(fields)")
                        compared += 1
                    }
                }
            }
        }
        #expect(compared == Self.statuses.count * Self.fieldSets.count * 6)
    }

    @Test("the gateway's own fields written in the same pass equal the head built with replaceOrAdd, as before")
    func addedFieldsAsBefore() throws {
        for status in [HTTPResponseStatus.ok, .notModified, .notFound] {
            for fields in Self.fieldSets {
                for close in [false, true] {
                    for hsts in [nil, "max-age=63072000"] as [String?] {
                        var built = HTTPHeaders(fields)
                        built.replaceOrAdd(name: "x-request-id", value: "req-1")
                        if let hsts, !built.contains(name: "strict-transport-security") {
                            built.add(name: "strict-transport-security", value: hsts)
                        }
                        if close { built.replaceOrAdd(name: "connection", value: "close") }
                        let expected = try Self.nioBytes(
                            HTTPResponseHead(version: .http1_1, status: status, headers: built),
                            body: nil,
                            answering: .GET
                        )
                        let own = try Self.ownBytes(
                            HTTPResponseHead(version: .http1_1, status: status, headers: HTTPHeaders(fields)),
                            adding: .init(requestID: "req-1", hsts: hsts, connectionClose: close),
                            body: nil,
                            answering: .GET
                        )
                        #expect(own == expected, "\(status) close=\(close) hsts=\(hsts ?? "-") \(fields)")
                    }
                }
            }
        }
    }

    @Test("a field with CR, LF, NUL or DEL, a name that is not a token, or a bad reason phrase is refused whole")
    func refusesWhatWouldSplitTheResponse() {
        let bad: [HTTPResponseHead] = [
            HTTPResponseHead(version: .http1_1, status: .ok, headers: ["x-evil": "a\r\nset-cookie: b"]),
            HTTPResponseHead(version: .http1_1, status: .ok, headers: ["x-evil": "a\nb"]),
            HTTPResponseHead(version: .http1_1, status: .ok, headers: ["x-nul": "a\u{0}b"]),
            HTTPResponseHead(version: .http1_1, status: .ok, headers: ["x-del": "a\u{7F}"]),
            HTTPResponseHead(version: .http1_1, status: .ok, headers: ["bad name": "v"]),
            HTTPResponseHead(version: .http1_1, status: .ok, headers: ["": "v"]),
            HTTPResponseHead(version: .http1_1, status: .ok, headers: ["x-r\rrequest-id": "v"]),
            HTTPResponseHead(version: .http1_1, status: .custom(code: 200, reasonPhrase: "OK\r\nx: y")),
        ]
        for head in bad {
            #expect(Self.encodes(head, adding: .init()) == nil, "\(head)")
        }
        let added = HTTP1ResponseEncoder.AddedFields(requestID: "id\r\nx: y")
        let head = HTTPResponseHead(version: .http1_1, status: .ok)
        #expect(Self.encodes(head, adding: added) == nil)
    }

    @Test(
        "a response to CONNECT has no framing fields and no body; chunk sizes are hex; trailers follow the last chunk"
    )
    func connectChunkSizesAndTrailers() throws {
        var encoder = HTTP1ResponseEncoder()
        let allocator = ByteBufferAllocator()
        let connect = HTTPResponseHead(version: .http1_1, status: .notFound, headers: ["content-length": "9"])
        let connectHead = encoder.encodeHead(connect, adding: .init(), answering: .CONNECT, allocator: allocator)
        let bytes = try #require(connectHead)
        #expect(String(buffer: bytes) == "HTTP/1.1 404 Not Found\r\n\r\n")
        #expect(!encoder.isChunked)
        let noEnd = encoder.encodeEnd(trailers: nil, allocator: allocator)
        #expect(noEnd == nil)

        for (length, line) in [(1, "1\r\n"), (15, "f\r\n"), (16, "10\r\n"), (4096, "1000\r\n"), (0xABCDE, "abcde\r\n")]
        {
            #expect(String(buffer: encoder.chunkPrefix(length: length, allocator: allocator)) == line)
        }

        let chunked = HTTPResponseHead(version: .http1_1, status: .ok)
        let chunkedHead = encoder.encodeHead(chunked, adding: .init(), answering: .GET, allocator: allocator)
        #expect(chunkedHead != nil)
        #expect(encoder.isChunked)
        let last = encoder.encodeEnd(
            trailers: ["grpc-status": "0", "x-bad": "a\r\nb", "x-md5": "abc"],
            allocator: allocator
        )
        let end = try #require(last)
        #expect(String(buffer: end) == "0\r\ngrpc-status: 0\r\nx-md5: abc\r\n\r\n", "a bad trailer field is left out")
        #expect(!encoder.isChunked, "the next response starts afresh")
    }

    @Test("only an HTTP/1.0 response with a body and no length is delimited by the close")
    func closeDelimited() {
        let noLength = HTTPResponseHead(version: .http1_0, status: .ok)
        let withLength = HTTPResponseHead(version: .http1_0, status: .ok, headers: ["Content-Length": "3"])
        #expect(HTTP1ResponseEncoder.isCloseDelimited(noLength, answering: .GET))
        #expect(!HTTP1ResponseEncoder.isCloseDelimited(noLength, answering: .HEAD))
        #expect(!HTTP1ResponseEncoder.isCloseDelimited(withLength, answering: .GET))
        #expect(
            !HTTP1ResponseEncoder.isCloseDelimited(
                HTTPResponseHead(version: .http1_0, status: .noContent),
                answering: .GET
            )
        )
        #expect(
            !HTTP1ResponseEncoder.isCloseDelimited(HTTPResponseHead(version: .http1_1, status: .ok), answering: .GET)
        )
    }
}
