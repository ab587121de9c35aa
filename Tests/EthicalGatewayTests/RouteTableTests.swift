import NIOHTTP1
import Testing

@testable import EthicalGateway

@Suite("Route table: precedence, boundaries, ties")
struct RouteTableTests {
    func entry(
        _ name: String,
        hosts: [String] = [],
        path: String? = nil,
        prefix: String? = nil,
        methods: [String]? = nil,
        headers: [String: String] = [:]
    ) -> RouteEntry<String> {
        RouteEntry(
            name: name,
            jsonPath: "$.routes.\(name)",
            hosts: hosts.compactMap(HostPattern.init),
            path: PathCondition(path: path, pathPrefix: prefix),
            methods: methods.map(Set.init),
            headers: headers.map { HeaderCondition(name: $0.key, value: $0.value) },
            target: name
        )
    }

    func match(
        _ table: RouteTable<String>,
        _ host: String?,
        _ path: String,
        _ method: HTTPMethod = .GET,
        _ headers: HTTPHeaders = [:]
    ) -> String? {
        table.match(host: host, path: Substring(path), method: method, headers: headers)?.target
    }

    @Test("the most specific route wins: host, then path, then methods and headers")
    func precedence() throws {
        let table = try RouteTable.build([
            entry("catch-all"),
            entry("api", prefix: "/api"),
            entry("api-v1", prefix: "/api/v1"),
            entry("api-get", prefix: "/api", methods: ["GET"]),
            entry("api-canary", prefix: "/api", methods: ["GET"], headers: ["x-canary": "1"]),
            entry("health", path: "/healthz"),
            entry("wild", hosts: ["*.example.com"]),
            entry("exact-host", hosts: ["api.example.com"], prefix: "/v1"),
        ])
        #expect(match(table, nil, "/") == "catch-all")
        #expect(match(table, nil, "/api", .POST) == "api")
        #expect(match(table, nil, "/api/users", .GET) == "api-get")
        #expect(match(table, nil, "/api/users", .GET, ["X-Canary": "1"]) == "api-canary")
        #expect(match(table, nil, "/api/v1/users", .GET) == "api-v1")
        #expect(match(table, nil, "/healthz") == "health")
        #expect(match(table, nil, "/healthz/more") == "catch-all")
        #expect(match(table, "shop.example.com", "/api") == "wild")
        #expect(match(table, "api.example.com", "/v1/x") == "exact-host")
        // The exact host has no route for /other: fall back to the wildcard host.
        #expect(match(table, "api.example.com", "/other") == "wild")
        // One-label wildcard: a deeper name falls through to routes without a host.
        #expect(match(table, "a.b.example.com", "/") == "catch-all")
        #expect(match(table, "example.com", "/") == "catch-all")
    }

    @Test("prefixes match on segment boundaries only")
    func segmentBoundaries() throws {
        let table = try RouteTable.build([entry("api", prefix: "/api"), entry("root", prefix: "/")])
        #expect(match(table, nil, "/api") == "api")
        #expect(match(table, nil, "/api/") == "api")
        #expect(match(table, nil, "/api/x") == "api")
        #expect(match(table, nil, "/apix") == "root")
        #expect(match(table, nil, "/ap") == "root")
    }

    @Test("the request's host: lower-cased, without port or trailing dot, IPv6 literals kept whole")
    func requestHostFromHeader() {
        let cases: [(String, String)] = [
            ("Example.COM:8080", "example.com"), ("app.test.", "app.test"), ("app.test.:443", "app.test"),
            ("[::1]:8443", "[::1]"), ("[::1]", "[::1]"), ("[::1", "[::1"), ("", ""), (".", ""), ("x:", "x"),
            ("a:b:c", "a:b"), ("ÜNÏ.test:1", "ünï.test"), ("Ü:1.", "ü"),
        ]
        for (value, host) in cases {
            #expect(requestHost(fromHeaderValue: value) == host, "\(value)")
        }
    }

    @Test("no route gives nil")
    func noRoute() throws {
        let table = try RouteTable.build([entry("api", hosts: ["a.test"], prefix: "/api", methods: ["GET"])])
        #expect(match(table, "a.test", "/api", .POST) == nil)
        #expect(match(table, "b.test", "/api") == nil)
        #expect(match(table, nil, "/api") == nil)
    }

    @Test("the matched prefix drives strip and rewrite")
    func rewrite() throws {
        let table = try RouteTable.build([entry("api", prefix: "/api/"), entry("exact", path: "/old")])
        let api = try #require(table.match(host: nil, path: "/api/users/7", method: .GET, headers: [:]))
        #expect(api.matchedPrefix == "/api")
        #expect(
            PathRewrite(stripPrefix: true, rewritePrefix: nil).apply(
                to: "/api/users/7",
                matchedPrefix: api.matchedPrefix
            ) == "/users/7"
        )
        #expect(
            PathRewrite(stripPrefix: false, rewritePrefix: "/v2").apply(
                to: "/api/users/7",
                matchedPrefix: api.matchedPrefix
            ) == "/v2/users/7"
        )
        #expect(PathRewrite(stripPrefix: true, rewritePrefix: nil).apply(to: "/api", matchedPrefix: "/api") == "/")
        let exact = try #require(table.match(host: nil, path: "/old", method: .GET, headers: [:]))
        #expect(
            PathRewrite(stripPrefix: false, rewritePrefix: "/new").apply(to: "/old", matchedPrefix: exact.matchedPrefix)
                == "/new"
        )
    }

    @Test("routes that could take the same request with equal precedence are rejected")
    func ties() {
        #expect(throws: ConfigValidationError.self) {
            try RouteTable.build([entry("a", prefix: "/x"), entry("b", prefix: "/x/")])
        }
        #expect(throws: ConfigValidationError.self) {
            try RouteTable.build([
                entry("a", hosts: ["h.test"], path: "/x", methods: ["GET", "PUT"]),
                entry("b", hosts: ["h.test"], path: "/x", methods: ["PUT"]),
            ])
        }
        #expect(throws: ConfigValidationError.self) {
            try RouteTable.build([
                entry("a", prefix: "/x", headers: ["a": "1"]), entry("b", prefix: "/x", headers: ["b": "1"]),
            ])
        }
        // Disjoint methods or conflicting header values cannot take the same request.
        #expect(throws: Never.self) {
            try RouteTable.build([
                entry("a", prefix: "/x", methods: ["GET"]), entry("b", prefix: "/x", methods: ["POST"]),
            ])
        }
        #expect(throws: Never.self) {
            try RouteTable.build([
                entry("a", prefix: "/x", headers: ["v": "1"]), entry("b", prefix: "/x", headers: ["v": "2"]),
            ])
        }
        // Same path, different hosts: no tie.
        #expect(throws: Never.self) {
            try RouteTable.build([
                entry("a", hosts: ["a.test"], prefix: "/"), entry("b", hosts: ["b.test"], prefix: "/"),
            ])
        }
    }

    @Test("ten thousand routes compile and each still matches its own path")
    func manyRoutes() throws {
        let entries = (0..<10_000).map { entry("r\($0)", hosts: ["h\($0 % 50).test"], prefix: "/svc\($0)/api") }
        let table = try RouteTable.build(entries)
        for index in stride(from: 0, to: 10_000, by: 997) {
            #expect(match(table, "h\(index % 50).test", "/svc\(index)/api/x") == "r\(index)")
        }
        #expect(match(table, "h1.test", "/svc2/api") == nil)
    }
}

@Suite("Request paths")
struct RequestPathTests {
    @Test(
        "dot segments and repeated slashes are removed before routing",
        arguments: [
            ("/a/b", "/a/b"), ("/a/./b", "/a/b"), ("/a/../b", "/b"), ("/../../etc/passwd", "/etc/passwd"),
            ("//a//b/", "/a/b/"), ("/a/..", "/"), ("/", "/"), ("/a/b/..", "/a/"),
        ]
    )
    func normalize(input: String, expected: String) {
        #expect(CanonicalRequestPathTestSupport.canonical(input) == expected)
    }

    @Test("targets that are not absolute paths are refused")
    func notAbsolute() {
        #expect(CanonicalRequestPathTestSupport.canonical("http://x/y") == nil)
        #expect(CanonicalRequestPathTestSupport.canonical("*") == nil)
    }

    @Test("percent-decoding rejects malformed escapes")
    func percentDecode() {
        #expect(RequestPath.percentDecode("/a%20b") == "/a b")
        #expect(RequestPath.percentDecode("/%2e%2e/x") == "/../x")
        #expect(RequestPath.percentDecode("/%zz") == nil)
        #expect(RequestPath.percentDecode("/%e2%82") == nil)
    }
}

@Suite("Request ids")
struct RequestIDTests {
    @Test("generated ids are 32 lower-case hex digits and differ")
    func generated() {
        let ids = (0..<100).map { _ in RequestID.generate() }
        #expect(ids.allSatisfy { $0.count == 32 && $0.allSatisfy { "0123456789abcdef".contains($0) } })
        #expect(Set(ids).count == 100)
    }
}

/// The path routing sees (``CanonicalPath``), or `nil` when it is refused.
enum CanonicalRequestPathTestSupport {
    static func canonical(_ raw: String) -> String? {
        if case .success(let path) = CanonicalPath.make(Substring(raw)) { return path.path }
        return nil
    }
}
