import HTTP1Codec
import NIOCore
import Testing

@Suite("HTTP/1.1 request head parser: in place, strict by RFC 9112")
struct HTTP1RequestHeadParserTests {
    static func parse(_ text: String) -> HTTP1RequestHeadParser.Result {
        Array(text.utf8).withUnsafeBytes { HTTP1RequestHeadParser.parse($0) }
    }

    static func parse(bytes: [UInt8]) -> HTTP1RequestHeadParser.Result {
        bytes.withUnsafeBytes { HTTP1RequestHeadParser.parse($0) }
    }

    static func head(_ text: String) throws -> (HTTP1RequestHead, ByteBuffer) {
        guard case .complete(let head) = Self.parse(text) else {
            Issue.record("not complete: \(Self.parse(text))")
            throw CancellationError()
        }
        return (head, ByteBuffer(string: text))
    }

    static func refusal(_ text: String) -> HTTP1ParseError? {
        if case .refused(let error) = Self.parse(text) { return error }
        return nil
    }

    @Test("a request head becomes byte ranges: method, target, version, fields, and where the head ends")
    func ranges() throws {
        let text = "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nX-Two:  two words \t\r\n\r\nbody"
        let (head, bytes) = try Self.head(text)
        #expect(head.method(in: bytes) == .GET)
        #expect(head.target(in: bytes) == "/a?b=1")
        #expect(head.minorVersion == 1)
        #expect(head.fields.map { head.name(of: $0, in: bytes) } == ["Host", "X-Two"])
        #expect(head.fields.map { head.value(of: $0, in: bytes) } == ["example.com", "two words"])
        #expect(head.host == 0)
        #expect(head.length == text.utf8.count - 4)
        #expect(head.framing == .none)
        #expect(head.keepAlive)
        let nio = head.makeHTTPRequestHead(from: bytes)
        #expect(nio.uri == "/a?b=1")
        #expect(nio.headers["x-two"] == ["two words"])
    }

    @Test("every proper prefix of a head is incomplete, never refused")
    func prefixes() {
        let text = Array("\r\nPOST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\n".utf8)
        for length in 0..<text.count {
            #expect(Self.parse(bytes: Array(text[..<length])) == .incomplete, "prefix of \(length) bytes")
        }
        guard case .complete(let head) = Self.parse(bytes: text) else {
            Issue.record("the whole head did not parse")
            return
        }
        #expect(head.framing == .contentLength(3))
        #expect(!head.keepAlive)
        #expect(head.length == text.count)
    }

    @Test("framing: Content-Length, chunked, none")
    func framing() throws {
        #expect(
            try Self.head("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n").0.framing == .contentLength(42)
        )
        #expect(try Self.head("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").0.framing == .none)
        #expect(try Self.head("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked \r\n\r\n").0.framing == .chunked)
        #expect(try Self.head("GET / HTTP/1.1\r\nHost: a\r\n\r\n").0.framing == .none)
    }

    @Test("Connection tokens and keep-alive per version")
    func connection() throws {
        let http10 = try Self.head("GET / HTTP/1.0\r\n\r\n").0
        #expect(!http10.keepAlive)
        #expect(http10.host == nil)
        #expect(try Self.head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").0.keepAlive)
        let upgrade = try Self.head(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive , Upgrade\r\nUpgrade: websocket\r\n\r\n"
        ).0
        #expect(upgrade.connection == [.keepAlive, .upgrade])
        #expect(upgrade.upgrade == 2)
        #expect(try !Self.head("GET / HTTP/1.1\r\nHost: a\r\nConnection: x, CLOSE\r\n\r\n").0.keepAlive)
    }

    @Test("empty lines before the request line are skipped; absolute form needs no Host")
    func lenientWhereTheRFCAllows() throws {
        #expect(try Self.head("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n").0.length == 31)
        #expect(try Self.head("GET http://a.test/x HTTP/1.1\r\n\r\n").0.host == nil)
        let expect = try Self.head("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n").0
        #expect(expect.expect == 1)
    }

    @Test(
        "what request smuggling needs is refused, with the status the gateway answers",
        arguments: [
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\t\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\t1\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            // Chunked not the final coding, or applied twice: RFC 9112 6.3 MUST 400.
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\t\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip,\tchunked\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip,,chunked\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n", 501),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400),
            ("GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\n: a\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\u{0}b\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\u{7F}\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\u{1B}\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400),
            ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
            ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
            ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
            ("GET / http/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET /a\u{7F} HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ]
    )
    func refusals(text: String, status: Int) {
        let error = Self.refusal(text)
        #expect(error?.status == status, "\(text.debugDescription): \(String(describing: error))")
    }

    @Test("a target no ending can make valid is refused before its end arrives (as llhttp does)")
    func targetPrefixes() {
        for text in ["GET p/lic", "GET #", "GET http:x", "GET http:/x", "OPTIONS *x", "GET *", "GET http://a\\"] {
            guard case .refused = Self.parse(text) else {
                Issue.record("\(text.debugDescription): \(Self.parse(text))")
                continue
            }
        }
        for text in [
            "GET /", "GET h", "GET http", "GET http:", "GET http:/", "GET http://", "GET http://a", "OPTIONS *",
        ] {
            #expect(Self.parse(text) == .incomplete, "\(text.debugDescription)")
        }
    }

    @Test("a version other than 1.0 and 1.1 is refused as soon as its digits are in")
    func versionPrefixes() {
        for text in ["GET / HTTP/0.1\r", "GET / HTTP/2", "GET / HTTP/1.2", "GET / HTTP/1.1x", "GET / HTTPS"] {
            guard case .refused = Self.parse(text) else {
                Issue.record("\(text.debugDescription): \(Self.parse(text))")
                continue
            }
        }
        for text in ["GET / H", "GET / HTTP/", "GET / HTTP/1", "GET / HTTP/1.", "GET / HTTP/1.0", "GET / HTTP/1.1\r"] {
            #expect(Self.parse(text) == .incomplete, "\(text.debugDescription)")
        }
    }

    @Test("a target byte outside visible ASCII is refused")
    func highBytesInTarget() {
        let bytes = Array("GET /caf".utf8) + [0xC3, 0xA9] + Array(" HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        guard case .refused(let error) = Self.parse(bytes: bytes) else {
            Issue.record("accepted")
            return
        }
        #expect(error.status == 400)
    }

    @Test("field values may carry obs-text (bytes 0x80-0xFF), as RFC 9110 5.5 allows")
    func obsText() {
        let bytes = Array("GET / HTTP/1.1\r\nHost: a\r\nX: caf".utf8) + [0xC3, 0xA9, 0xFF] + Array("\r\n\r\n".utf8)
        guard case .complete(let head) = Self.parse(bytes: bytes) else {
            Issue.record("refused")
            return
        }
        #expect(head.fields[1].value.count == 6)
    }
}

@Suite("Chunk-size lines: strict hexadecimal, extensions ignored")
struct HTTP1ChunkSizeLineTests {
    static func parse(_ text: String) -> HTTP1ChunkSizeLine.Result {
        Array(text.utf8).withUnsafeBytes { HTTP1ChunkSizeLine.parse($0) }
    }

    @Test("sizes and extensions")
    func accepted() {
        #expect(Self.parse("1a\r\nxyz") == .complete(size: 26, length: 4))
        #expect(Self.parse("0\r\n") == .complete(size: 0, length: 3))
        #expect(Self.parse("FFFFFFFFFFFFFFF\r\n") == .complete(size: 0xFFF_FFFF_FFFF_FFFF, length: 17))
        #expect(Self.parse("5;name=value;b=\"q\\\"\"\r\n") == .complete(size: 5, length: 22))
        #expect(Self.parse("5;flag;x=\"\"\r\n") == .complete(size: 5, length: 13))
    }

    @Test("incomplete until the CRLF")
    func incomplete() {
        for text in ["", "5", "5;", "5;ext", "5\r", "ab;x=\"1", "5;x=", "5;x=\"a\\", "5;x=\"\\\"", "5;a=b;c"] {
            #expect(Self.parse(text) == .incomplete, "\(text.debugDescription)")
        }
    }

    @Test(
        "invalid sizes are refused",
        arguments: [
            "\r\n", " 5\r\n", "5 \r\n", "-5\r\n", "+5\r\n", "0x5\r\n", "5\n", "5\rx", "g\r\n",
            "1000000000000000\r\n", "5;a\u{0}\r\n", "5;a\nb\r\n",
            // Extensions: a token name, a token or quoted value, no whitespace (llhttp refuses it).
            "5;\r\n", "5;=v\r\n", "5;a=\r\n", "5; a\r\n", "5;a =b\r\n", "5;a=b c\r\n", "5;a=\"x\"y\r\n",
            "5;a=\"\u{1}\"\r\n", "5;a=\"\\\u{7F}\"\r\n", "5;a(b)\r\n",
        ]
    )
    func refused(text: String) {
        guard case .refused(let error) = Self.parse(text) else {
            Issue.record("\(text.debugDescription) was not refused: \(Self.parse(text))")
            return
        }
        #expect(error.status == 400)
    }
}
