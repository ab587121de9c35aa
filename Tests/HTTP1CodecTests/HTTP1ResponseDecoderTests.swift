import HTTP1Codec
import NIOCore
import NIOHTTP1
import Testing

@Suite("HTTP/1.1 response decoder: status lines, framing by RFC 9112 6.3, interim responses, 101, refusals")
struct HTTP1ResponseDecoderTests {
    /// What the decoder made of a byte stream, in a form two runs can be compared by.
    enum Decoded: Equatable, CustomStringConvertible {
        case head(String)
        case body(String)
        case end([String])
        case refused(String)

        var description: String {
            switch self {
            case .head(let line): "head(\(line))"
            case .body(let text): "body(\(text.debugDescription))"
            case .end(let trailers): "end(\(trailers))"
            case .refused(let reason): "refused(\(reason))"
            }
        }
    }

    /// Feeds `chunks` one after the other to a decoder told of `requests` (true: a HEAD),
    /// decoding after each as a handler would, then (with `close`) the connection's close; body
    /// parts that arrive in pieces are joined, so splits do not show. Interim heads are listed.
    static func decode(
        _ chunks: [[UInt8]],
        requests: [Bool] = [false],
        close: Bool = true,
        maxHeadBytes: Int = 4096
    ) -> (events: [Decoded], left: ByteBuffer) {
        var decoder = HTTP1ResponseDecoder(maxHeadBytes: maxHeadBytes)
        for toHEAD in requests { decoder.expectResponse(toHEAD: toHEAD) }
        var buffer = ByteBuffer()
        var events: [Decoded] = []
        func record(_ event: HTTP1ResponseDecoder.Event) -> Bool {
            switch event {
            case .head(let head, let bytes):
                let status = head.makeHTTPResponseHead(from: bytes)
                events.append(.head("\(status.version) \(head.status) keep-alive \(head.keepAlive)"))
            case .body(let part):
                if case .body(let text) = events.last {
                    events[events.count - 1] = .body(text + String(buffer: part))
                } else {
                    events.append(.body(String(buffer: part)))
                }
            case .end(let trailers):
                events.append(.end(trailers.map { $0.map { "\($0.name): \($0.value)" } } ?? []))
            case .needMoreData:
                return false
            case .refused(let error):
                events.append(.refused("\(error)"))
                return false
            }
            return true
        }
        for chunk in chunks {
            buffer.writeBytes(chunk)
            while record(decoder.next(&buffer)) {}
            if case .refused = events.last { return (events, buffer) }
        }
        if close, let event = decoder.inputEnded(leaving: buffer) { _ = record(event) }
        return (events, buffer)
    }

    static func decode(_ text: String, requests: [Bool] = [false], close: Bool = true) -> [Decoded] {
        Self.decode([Array(text.utf8)], requests: requests, close: close).events
    }

    /// Responses to GET, HEAD, GET, GET, GET, GET: an interim 100 before a length-framed body; a
    /// HEAD's answer whose length is not followed by a body; 204 and 304; a chunked body with
    /// extensions and trailers; an HTTP/1.0 body read until the close.
    static let stream =
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
        + "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n"
        + "HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n"
        + "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n"
        + "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + "5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\nX-Other:  two words \r\n\r\n"
        + "HTTP/1.0 200\r\nServer: old\r\n\r\nuntil the close"
    static let streamRequests = [false, true, false, false, false, false]

    static let expected: [Decoded] = [
        .head("HTTP/1.1 100 keep-alive true"), .head("HTTP/1.1 200 keep-alive true"), .body("hello"), .end([]),
        .head("HTTP/1.1 200 keep-alive true"), .end([]),
        .head("HTTP/1.1 204 keep-alive true"), .end([]),
        .head("HTTP/1.1 304 keep-alive true"), .end([]),
        .head("HTTP/1.1 200 keep-alive true"), .body("hello world"), .end(["X-Trailer: t", "X-Other: two words"]),
        .head("HTTP/1.0 200 keep-alive false"), .body("until the close"), .end([]),
    ]

    @Test("responses to several requests in one buffer: every head, body and end, in order, by RFC 9112 6.3")
    func streamInOneBuffer() {
        #expect(Self.decode(Self.stream, requests: Self.streamRequests) == Self.expected)
    }

    @Test("the same stream split at every byte, and byte by byte, decodes the same")
    func everySplit() {
        let bytes = Array(Self.stream.utf8)
        for split in 0...bytes.count {
            let decoded = Self.decode([Array(bytes[..<split]), Array(bytes[split...])], requests: Self.streamRequests)
            #expect(decoded.events == Self.expected, "split at \(split)")
        }
        #expect(Self.decode(bytes.map { [$0] }, requests: Self.streamRequests).events == Self.expected)
    }

    @Test("a body read until the close ends only when the connection closes")
    func closeDelimited() {
        let text = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome bytes"
        #expect(
            Self.decode(text, close: false) == [.head("HTTP/1.1 200 keep-alive false"), .body("some bytes")]
        )
        #expect(
            Self.decode(text) == [.head("HTTP/1.1 200 keep-alive false"), .body("some bytes"), .end([])]
        )
    }

    @Test("body parts are slices of the receive buffer, no more than the length says")
    func bodySlices() {
        var decoder = HTTP1ResponseDecoder(maxHeadBytes: 4096)
        decoder.expectResponse(toHEAD: false)
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
        var buffer = ByteBuffer(string: head + "abcdef")
        let start = buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        guard case .head = decoder.next(&buffer), case .body(let part) = decoder.next(&buffer),
            case .end(nil) = decoder.next(&buffer)
        else {
            Issue.record("not head, body, end")
            return
        }
        #expect(String(buffer: part) == "abc")
        #expect(part.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == start + UInt(head.utf8.count))
        guard case .refused(let error) = decoder.next(&buffer) else {
            Issue.record("bytes after the only response awaited were not refused")
            return
        }
        #expect("\(error)".contains("no request was waiting"))
    }

    @Test("101 Switching Protocols ends HTTP: the bytes after its head stay in the buffer, untouched")
    func switchingProtocols() {
        let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        let bytes = Array(head.utf8) + [0x81, 0x05] + Array("hello".utf8) + Array("HTTP/1.1 200 OK\r\n\r\n".utf8)
        for split in 0...bytes.count {
            let (events, left) = Self.decode(
                [Array(bytes[..<split]), Array(bytes[split...])],
                requests: [false, false],
                close: false
            )
            #expect(events == [.head("HTTP/1.1 101 keep-alive true")], "split at \(split)")
            #expect(Array(left.readableBytesView) == Array(bytes[head.utf8.count...]), "split at \(split)")
        }
        #expect(Self.decode(head + "x", close: true) == [.head("HTTP/1.1 101 keep-alive true")])
    }

    @Test("a 1xx before the final response: the final one still answers the same request")
    func interimResponses() {
        let text =
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        #expect(
            Self.decode(text, close: false) == [
                .head("HTTP/1.1 100 keep-alive true"), .head("HTTP/1.1 103 keep-alive true"),
                .head("HTTP/1.1 200 keep-alive true"), .body("ok"), .end([]),
            ]
        )
    }

    @Test(
        "malformed responses are refused with their reason",
        arguments: [
            ("HTTP/1.1 abc Nope\r\ncontent-length: 0\r\n\r\n", "status line"),
            ("SSH-2.0-OpenSSH_9.2\r\n\r\n", "status line"),
            ("HTTP/2.0 200 OK\r\n\r\n", "status line"),
            ("HTTP/1.2 200 OK\r\n\r\n", "status line"),
            ("HTTP/1.1 600 Custom\r\n\r\n", "status line"),
            ("HTTP/1.1 099 Low\r\n\r\n", "status line"),
            ("HTTP/1.1 2000 OK\r\n\r\n", "status line"),
            ("HTTP/1.1  200 OK\r\n\r\n", "status line"),
            ("HTTP/1.1 200 O\u{1}K\r\n\r\n", "status line"),
            ("\r\nHTTP/1.1 200 OK\r\n\r\n", "status line"),
            ("HTTP/1.1 200 OK\n\r\n", "line feed alone"),
            ("HTTP/1.1 200 OK\r\rX: a\r\n\r\n", "carriage return"),
            ("HTTP/1.1 200 OK\r\nbroken header\r\n\r\n", "whitespace between"),
            ("HTTP/1.1 200 OK\r\nbroken\r\n\r\n", "token"),
            ("HTTP/1.1 200 OK\r\nX(A): b\r\n\r\n", "token"),
            ("HTTP/1.1 200 OK\r\nX-A : b\r\n\r\n", "whitespace between"),
            ("HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n", "obsolete line folding"),
            ("HTTP/1.1 200 OK\r\nX-A: a\u{0}b\r\n\r\n", "control character"),
            ("HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n", "carriage return"),
            ("HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 40\r\n\r\nok", "response carries more than one"),
            ("HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\nok", "response carries more than one"),
            ("HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", "carry both"),
            ("HTTP/1.1 200 OK\r\ncontent-length: 0x2\r\n\r\nok", "decimal number"),
            ("HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\n\r\nok", "decimal number"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nxx", "final transfer coding"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "only transfer coding"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, chunked\r\n\r\n0\r\n\r\n", "final transfer coding"),
            ("HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.0 responses"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\t\r\n\r\n0\r\n\r\n", "no tabs"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip,\tchunked\r\n\r\n0\r\n\r\n", "no tabs"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked,\r\n\r\n0\r\n\r\n", "no empty ones"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: , chunked\r\n\r\n0\r\n\r\n", "no empty ones"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n", "chunk size"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n", "followed by CRLF"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nX : t\r\n\r\n", "whitespace between"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nContent-Length: 0\r\n\r\n", "trailer"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nTransfer-Encoding: x\r\n\r\n", "trailer"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nConnection: close\r\n\r\n", "trailer"),
            ("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + String(repeating: "x", count: 99), "middle of"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n", "middle of a response"),
            ("HTTP/1.1 200 OK\r\nContent-Le", "middle of a response"),
            ("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", "ends the"),
            ("HTTP/1.0 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", "ends the connection"),
            ("HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", "ends the connection"),
        ]
    )
    func refusals(response: String, reason: String) {
        let decoded = Self.decode(response)
        guard case .refused(let text) = decoded.last else {
            Issue.record("\(response.debugDescription): not refused: \(decoded)")
            return
        }
        #expect(text.contains(reason), "\(response.debugDescription): \(text)")
    }

    @Test("the status line's reason phrase may be empty, its space too, and may hold obs-text")
    func reasonPhrases() {
        for line in ["HTTP/1.1 200 \r\n", "HTTP/1.1 200\r\n", "HTTP/1.1 200 Ça va\r\n", "HTTP/1.1 599 a\tb\r\n"] {
            let decoded = Self.decode(line + "Content-Length: 0\r\n\r\n")
            #expect(decoded.count == 2 && decoded.last == .end([]), "\(line.debugDescription): \(decoded)")
        }
    }

    @Test(
        "whether the connection ends with a response is known after its head",
        arguments: [
            ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", false, false),
            ("HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\n", false, true),
            ("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false, true),
            ("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", false, false),
            ("HTTP/1.1 200 OK\r\n\r\n", false, true),
            ("HTTP/1.1 200 OK\r\n\r\n", true, false),
            ("HTTP/1.1 204 No Content\r\n\r\n", false, false),
        ]
    )
    func endsConnection(head: String, toHEAD: Bool, ends: Bool) {
        var decoder = HTTP1ResponseDecoder(maxHeadBytes: 4096)
        decoder.expectResponse(toHEAD: toHEAD)
        #expect(!decoder.endsConnection)
        var buffer = ByteBuffer(string: head)
        guard case .head = decoder.next(&buffer) else {
            Issue.record("\(head.debugDescription): no head")
            return
        }
        #expect(decoder.endsConnection == ends, "\(head.debugDescription), HEAD: \(toHEAD)")
    }

    @Test("bytes no request waits for are refused, also before any request")
    func unexpectedResponse() {
        let decoded = Self.decode("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", requests: [])
        #expect(decoded == [.refused("bytes arrived while no request was waiting for a response")])
    }

    @Test("a head or a trailer section past the limit is refused before it ends")
    func limits() {
        let longHead = "HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 200)
        let expected = [Decoded.refused("the response head, or its trailer section, is larger than the limit")]
        #expect(Self.decode([Array(longHead.utf8)], maxHeadBytes: 100).events == expected)
        #expect(Self.decode([Array((longHead + "\r\n\r\n").utf8)], maxHeadBytes: 100).events == expected)
        let longTrailers =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + String(repeating: "t", count: 200)
        #expect(Self.decode([Array(longTrailers.utf8)], maxHeadBytes: 100).events.last == expected.last)
    }

    @Test("the close between responses is no error; after a refusal nothing more is decoded")
    func closeAndRefusal() {
        var decoder = HTTP1ResponseDecoder(maxHeadBytes: 4096)
        #expect(decoder.inputEnded(leaving: ByteBuffer()) == nil)
        decoder.expectResponse(toHEAD: false)
        decoder.expectResponse(toHEAD: false)
        var buffer = ByteBuffer(string: "HTTP/1.1 200 OK\r\nX : y\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        guard case .refused = decoder.next(&buffer) else {
            Issue.record("not refused")
            return
        }
        guard case .needMoreData = decoder.next(&buffer) else {
            Issue.record("decoded after a refusal")
            return
        }
        #expect(buffer.readableBytes > 0, "the bytes after the refusal are never read")
        #expect(decoder.inputEnded(leaving: buffer) == nil)
    }
}
