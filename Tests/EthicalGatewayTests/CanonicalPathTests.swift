import EthicalGateway
import NIOHTTP1
import Testing

@Suite("One meaning per request: the canonical path, target and framing")
struct CanonicalPathTests {
    static func canonical(_ raw: String) -> String? {
        if case .success(let path) = CanonicalPath.make(Substring(raw)) { return path.path }
        return nil
    }

    @Test(
        "unreserved escapes are decoded, others kept in upper case, dot segments resolved after decoding",
        arguments: [
            ("/admin/x", "/admin/x"),
            ("/%61dmin/secret.txt", "/admin/secret.txt"),
            ("/%41%44MIN", "/ADMIN"),
            ("/public/%2e%2e/admin/secret.txt", "/admin/secret.txt"),
            ("/public/%2E%2e/admin", "/admin"),
            ("/public/./../admin", "/admin"),
            ("//admin///x", "/admin/x"),
            ("/admin/", "/admin/"),
            ("/a/b/..", "/a/"),
            ("/..", "/"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/caf%c3%a9", "/caf%C3%A9"),
            ("/café", "/caf%C3%A9"),
            ("/a%20b", "/a%20b"),
            ("/a%3Fb", "/a%3Fb"),
            ("/%7euser", "/~user"),
            ("/.well-known/x", "/.well-known/x"),
            ("/a;b=c/d", "/a;b=c/d"),
        ]
    )
    func canonicalForms(raw: String, expected: String) {
        #expect(Self.canonical(raw) == expected)
    }

    @Test(
        "NUL, malformed escapes, invalid UTF-8, backslashes, fragments and dot segments with parameters are refused",
        arguments: [
            "/admin%00.txt", "/a%zz", "/a%2", "/%c0%af", "/%c0%ae%c0%ae/admin", "/%ff", "/admin\\x",
            "/public/..;/admin/x", "/public/.;/admin", "/public/%2e%2e;x/admin", "/a#frag", "/a b", "relative",
        ]
    )
    func refused(raw: String) {
        #expect(Self.canonical(raw) == nil, "\(raw) was accepted")
    }

    @Test(
        "encoded slashes and backslashes stay encoded, and the decoded form is what routing sees",
        arguments: [
            ("/admin%2fsecret.txt", "/admin%2Fsecret.txt", "/admin/secret.txt"),
            ("/admin%2Fsecret.txt", "/admin%2Fsecret.txt", "/admin/secret.txt"),
            ("/admin%5csecret.txt", "/admin%5Csecret.txt", "/admin/secret.txt"),
            ("/public/..%2fadmin", "/public/..%2Fadmin", "/admin"),
            ("/public%2f%2e%2e%2fadmin", "/public%2F..%2Fadmin", "/admin"),
        ]
    )
    func encodedSlashes(raw: String, kept: String, decoded: String) throws {
        guard case .success(let path) = CanonicalPath.make(Substring(raw)) else {
            Issue.record("\(raw) was refused")
            return
        }
        #expect(path.path == kept)
        #expect(path.slashesDecoded == decoded)
    }

    @Test("absolute-form targets give their authority; other forms are refused")
    func targets() {
        let absolute = RequestTarget.parse("http://Admin.Test:8080/x/y?q=1")
        #expect(absolute?.authority == "Admin.Test:8080")
        #expect(absolute?.path == "/x/y")
        #expect(absolute?.query == "q=1")
        #expect(RequestTarget.parse("https://a.test")?.path == "/")
        #expect(RequestTarget.parse("/p?x")?.authority == nil)
        for refused in ["*", "a.test:443", "ftp://a.test/x", "http://user@a.test/x", "http:///x", "http://a b/x"] {
            #expect(RequestTarget.parse(refused) == nil, "\(refused) was accepted")
        }
    }

    @Test("Host values must be host[:port]")
    func hostValues() {
        for valid in ["a.test", "a.test:8080", "127.0.0.1", "[::1]:443", "xn--bcher-kva.example"] {
            #expect(isValidHostHeader(valid), "\(valid) was refused")
        }
        for invalid in ["", "a.test:80:80", "a/b", "a b", "a.test:port", "[::1", "a\u{0}b", "a.test:123456"] {
            #expect(!isValidHostHeader(invalid), "\(invalid) was accepted")
        }
    }

    static func head(_ uri: String, _ headers: [(String, String)], version: HTTPVersion = .http1_1) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: .POST, uri: uri, headers: HTTPHeaders(headers))
    }

    static func refusal(_ head: HTTPRequestHead, isHTTP2: Bool = false) -> CanonicalRequest.Refusal? {
        if case .failure(let refusal) = CanonicalRequest.make(head, isHTTP2: isHTTP2) { return refusal }
        return nil
    }

    @Test("framing: one chunked as the only coding, one decimal Content-Length, never both")
    func framing() {
        let host = ("host", "a.test")
        #expect(Self.refusal(Self.head("/", [host, ("transfer-encoding", "chunked")])) == nil)
        #expect(Self.refusal(Self.head("/", [host, ("transfer-encoding", "Chunked ")])) == nil)
        #expect(Self.refusal(Self.head("/", [host, ("content-length", "12")])) == nil)
        let notImplemented = ["identity, chunked", "chunked, identity", "xchunked", "gzip, chunked", "identity"]
        for coding in notImplemented {
            let refusal = Self.refusal(Self.head("/", [host, ("transfer-encoding", coding)]))
            #expect(refusal?.status == .notImplemented, "\(coding)")
            #expect(refusal?.closeConnection == true)
        }
        let twoCodings = Self.refusal(
            Self.head("/", [host, ("transfer-encoding", "chunked"), ("transfer-encoding", "chunked")])
        )
        #expect(twoCodings?.status == .notImplemented)
        let both = Self.refusal(Self.head("/", [host, ("transfer-encoding", "chunked"), ("content-length", "3")]))
        #expect(both?.status == .badRequest && both?.closeConnection == true)
        let http10 = Self.refusal(Self.head("/", [("transfer-encoding", "chunked")], version: .http1_0))
        #expect(http10?.status == .badRequest && http10?.closeConnection == true)
        for lengths in [["3", "3"], ["3", "4"], ["3, 3"], ["-1"], ["+3"], ["0x10"], [""]] {
            let refusal = Self.refusal(Self.head("/", [host] + lengths.map { ("content-length", $0) }))
            #expect(refusal?.status == .badRequest && refusal?.closeConnection == true, "\(lengths)")
        }
        // On HTTP/2 a lone `chunked` is NIO's codec marking a body whose end is END_STREAM (a
        // client's own Transfer-Encoding never gets past the codec); anything else is refused.
        #expect(Self.refusal(Self.head("/", [host, ("transfer-encoding", "chunked")]), isHTTP2: true) == nil)
        for fields in [[("transfer-encoding", "gzip")], [("transfer-encoding", "chunked"), ("content-length", "3")]] {
            let http2 = Self.refusal(Self.head("/", [host] + fields), isHTTP2: true)
            #expect(http2?.status == .badRequest, "\(fields)")
        }
    }

    @Test("Host: exactly one; the absolute-form authority replaces it; on HTTP/2 a Host equal to :authority is fine")
    func hosts() throws {
        let twoHosts = Self.refusal(Self.head("/", [("host", "public.test"), ("host", "admin.test")]))
        #expect(twoHosts?.status == .badRequest)
        #expect(Self.refusal(Self.head("/", [])).map { $0.status } == .badRequest)
        #expect(Self.refusal(Self.head("/", []), isHTTP2: false).map { $0.status } == .badRequest)
        #expect(Self.refusal(Self.head("/", [], version: .http1_0)) == nil)
        #expect(Self.refusal(Self.head("/", [("host", "a b")]))?.status == .badRequest)
        guard
            case .success(let absolute) = CanonicalRequest.make(
                Self.head("http://admin.test/x", [("host", "public.test")]),
                isHTTP2: false
            )
        else {
            Issue.record("absolute-form refused")
            return
        }
        #expect(absolute.host == "admin.test")
        #expect(absolute.head.headers["host"] == ["admin.test"])
        #expect(absolute.path.path == "/x")
        guard
            case .success(let http2) = CanonicalRequest.make(
                Self.head("/", [("host", "a.test"), ("host", "a.test")]),
                isHTTP2: true
            )
        else {
            Issue.record("HTTP/2 :authority with an equal Host refused")
            return
        }
        #expect(http2.head.headers["host"] == ["a.test"])
        #expect(Self.refusal(Self.head("/", [("host", "a.test"), ("host", "b.test")]), isHTTP2: true) != nil)
    }
}
