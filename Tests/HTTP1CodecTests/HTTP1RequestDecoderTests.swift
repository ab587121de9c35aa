import HTTP1Codec
import NIOCore
import NIOHTTP1
import Testing

@Suite("HTTP/1.1 request decoder: heads, Content-Length and chunked bodies, trailers, pipelining")
struct HTTP1RequestDecoderTests {
    /// What the decoder made of a byte stream, in a form two runs can be compared by.
    enum Decoded: Equatable, CustomStringConvertible {
        case head(String)
        case body(String)
        case end([String])
        case tooLarge
        case refused(Int, String)

        var description: String {
            switch self {
            case .head(let line): "head(\(line))"
            case .body(let text): "body(\(text.debugDescription))"
            case .end(let trailers): "end(\(trailers))"
            case .tooLarge: "tooLarge"
            case .refused(let status, let reason): "refused(\(status), \(reason))"
            }
        }
    }

    /// Feeds `chunks` one after the other, decoding after each as a handler would; body parts
    /// that arrive in pieces are joined, so splits do not show.
    static func decode(_ chunks: [[UInt8]], maxHeadBytes: Int = 4096) -> [Decoded] {
        var decoder = HTTP1RequestDecoder(maxHeadBytes: maxHeadBytes)
        var buffer = ByteBuffer()
        var events: [Decoded] = []
        for chunk in chunks {
            buffer.writeBytes(chunk)
            loop: while true {
                switch decoder.next(&buffer) {
                case .head(let head, let bytes):
                    events.append(.head("\(head.method(in: bytes).rawValue) \(head.target(in: bytes))"))
                case .body(let part):
                    if case .body(let text) = events.last {
                        events[events.count - 1] = .body(text + String(buffer: part))
                    } else {
                        events.append(.body(String(buffer: part)))
                    }
                case .end(let trailers):
                    events.append(.end(trailers.map { $0.map { "\($0.name): \($0.value)" } } ?? []))
                case .needMoreData:
                    break loop
                case .headTooLarge:
                    events.append(.tooLarge)
                    return events
                case .refused(let error):
                    events.append(.refused(error.status, "\(error)"))
                    return events
                }
            }
        }
        return events
    }

    static func decode(_ text: String, maxHeadBytes: Int = 4096) -> [Decoded] {
        Self.decode([Array(text.utf8)], maxHeadBytes: maxHeadBytes)
    }

    /// Three pipelined requests: a body with a length, a chunked body with extensions and
    /// trailers, a GET; then the start of a fourth head.
    static let pipelined =
        "POST /one HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
        + "PUT /two HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        + "5;name=value;x=\"q\"\r\nhello\r\n6\r\n world\r\n0;last\r\nX-Trailer: t\r\nX-Other:  two words \r\n\r\n"
        + "\r\nGET /three HTTP/1.1\r\nHost: a\r\n\r\nGET /fo"

    static let expected: [Decoded] = [
        .head("POST /one"), .body("hello"), .end([]),
        .head("PUT /two"), .body("hello world"), .end(["X-Trailer: t", "X-Other: two words"]),
        .head("GET /three"), .end([]),
    ]

    @Test("pipelined heads and bodies in one buffer: every request, its body and its end, in order")
    func pipelinedInOneBuffer() {
        #expect(Self.decode(Self.pipelined) == Self.expected)
    }

    @Test("the same stream split at every byte, and byte by byte, decodes the same")
    func everySplit() {
        let bytes = Array(Self.pipelined.utf8)
        for split in 0...bytes.count {
            let decoded = Self.decode([Array(bytes[..<split]), Array(bytes[split...])])
            #expect(decoded == Self.expected, "split at \(split)")
        }
        #expect(Self.decode(bytes.map { [$0] }) == Self.expected)
    }

    @Test("body parts are slices of the receive buffer, no more than the length says")
    func contentLengthStopsAtLength() {
        var decoder = HTTP1RequestDecoder(maxHeadBytes: 4096)
        var buffer = ByteBuffer(string: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET")
        guard case .head = decoder.next(&buffer), case .body(let part) = decoder.next(&buffer),
            case .end(nil) = decoder.next(&buffer)
        else {
            Issue.record("not head, body, end")
            return
        }
        #expect(String(buffer: part) == "abc")
        #expect(String(buffer: buffer) == "GET", "the next request's bytes stay in the buffer")
        #expect(decoder.awaitsHead)
    }

    @Test(
        "bad body framing is refused with its reason",
        arguments: [
            ("10000000000000000\r\nx", "chunk size"),
            ("-5\r\nhello\r\n", "chunk size"),
            ("0x5\r\nhello\r\n", "chunk size"),
            ("\r\nhello\r\n", "chunk size"),
            ("5\nhello\r\n", "chunk size"),
            ("2;x\nxx\r\n", "chunk size"),
            ("5;a=\"\u{1}\r\nhello\r\n", "chunk size"),
            ("5\r\nhelloXX\r\n0\r\n\r\n", "followed by CRLF"),
            ("5\r\nhello\r0\r\n\r\n", "followed by CRLF"),
            ("0\r\nX-T: a\r\n b\r\n\r\n", "obsolete line folding"),
            ("0\r\nX-T : a\r\n\r\n", "whitespace between"),
            ("0\r\nX-T: a\u{0}\r\n\r\n", "control character"),
            ("0\r\nX-T: a\n\r\n", "line feed alone"),
            ("0\r\nContent-Length: 5\r\n\r\n", "trailer section must not"),
            ("0\r\ntransfer-encoding: chunked\r\n\r\n", "trailer section must not"),
        ]
    )
    func chunkRefusals(body: String, reason: String) {
        let decoded = Self.decode("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        guard case .refused(let status, let text) = decoded.last else {
            Issue.record("\(body.debugDescription): not refused: \(decoded)")
            return
        }
        #expect(status == 400)
        #expect(text.contains(reason), "\(body.debugDescription): \(text)")
    }

    @Test("a head, a chunk-size line or a trailer section past the limit is refused before it ends")
    func limits() {
        let longHead = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "a", count: 200)
        #expect(Self.decode(longHead, maxHeadBytes: 100) == [.tooLarge])
        let complete = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "a", count: 200) + "\r\n\r\n"
        #expect(Self.decode(complete, maxHeadBytes: 100) == [.tooLarge], "a complete head over the limit too")
        #expect(Self.decode(String(repeating: "\r\n", count: 60), maxHeadBytes: 100) == [.tooLarge])
        let chunked = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        let longExtension = chunked + "5;" + String(repeating: "e", count: 200)
        #expect(Self.decode(longExtension, maxHeadBytes: 100).last == .refused(400, "\(Self.chunkSizeError)"))
        let longTrailers = chunked + "0\r\nX: " + String(repeating: "t", count: 200)
        #expect(Self.decode(longTrailers, maxHeadBytes: 100).last == .tooLarge)
    }

    static let chunkSizeError: String = {
        guard case .refused(let error) = Array("x".utf8).withUnsafeBytes(HTTP1ChunkSizeLine.parse) else { return "" }
        return "\(error)"
    }()

    @Test("the end of input: between requests it is fine, inside a head or a body it is an error")
    func inputEnded() {
        var decoder = HTTP1RequestDecoder(maxHeadBytes: 4096)
        #expect(decoder.inputEnded(leaving: ByteBuffer()) == nil)
        #expect(decoder.inputEnded(leaving: ByteBuffer(string: "\r\n")) == nil, "empty lines may precede a request")
        #expect(decoder.inputEnded(leaving: ByteBuffer(string: "GET / HT"))?.status == 400)
        var buffer = ByteBuffer(string: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc")
        _ = decoder.next(&buffer)
        _ = decoder.next(&buffer)
        guard case .needMoreData = decoder.next(&buffer) else {
            Issue.record("the body is not waiting for more")
            return
        }
        #expect(decoder.inputEnded(leaving: buffer)?.description.contains("middle of a request") == true)
    }

    @Test("after a refusal nothing more is decoded")
    func refusalIsFinal() {
        var decoder = HTTP1RequestDecoder(maxHeadBytes: 4096)
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        guard case .refused = decoder.next(&buffer) else {
            Issue.record("not refused")
            return
        }
        guard case .needMoreData = decoder.next(&buffer) else {
            Issue.record("decoded after a refusal")
            return
        }
        #expect(buffer.readableBytes > 0, "the bytes after the refusal are never read")
    }
}
