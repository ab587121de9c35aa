import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

@Suite("The static backend over a live gateway")
struct StaticFilesTests {
    static let config = """
        { "listeners": [ { "name": "https", "address": "127.0.0.1", "port": 0, "tls": {} } ],
          "routes": [ { "match": { "pathPrefix": "/files" }, "stripPrefix": true, "backend": "files" } ],
          "backends": { "files": { "plugin": "static", "config": { "root": "site", "maxAgeSeconds": 30 } } } }
        """

    static let files = [
        "site/index.html": "<h1>home</h1>",
        "site/docs/guide.txt": "0123456789abcdefghij",
        "site/style.css": "body{}",
        "secret.txt": "outside the root",
    ]

    func withGateway(_ body: (String) async throws -> Void) async throws {
        try await LiveGateway.with(
            config: Self.config,
            files: Self.files,
            registry: gatewayRegistry,
            prepare: { directory in
                try FileManager.default.createSymbolicLink(
                    atPath: directory.url.appendingPathComponent("site/escape.txt").path,
                    withDestinationPath: directory.url.appendingPathComponent("secret.txt").path
                )
                try FileManager.default.createSymbolicLink(
                    atPath: directory.url.appendingPathComponent("site/alias.txt").path,
                    withDestinationPath: "docs/guide.txt"
                )
            }
        ) { gateway in
            try await body("https://127.0.0.1:\(gateway.port("https"))/files")
        }
    }

    @Test("files with content types, index files, validators and caching headers")
    func serving() async throws {
        try await self.withGateway { base in
            let index = try await Curl.request(base + "/")
            #expect(index.status == 200 && index.bodyText == "<h1>home</h1>")
            #expect(index.header("content-type") == "text/html; charset=utf-8")
            #expect(index.header("cache-control") == "public, max-age=30")
            let css = try await Curl.request(base + "/style.css", ["--http1.1"])
            #expect(css.header("content-type") == "text/css; charset=utf-8")
            #expect(css.header("content-length") == "6")
            #expect(css.header("etag") != nil && css.header("last-modified") != nil)
            let inside = try await Curl.request(base + "/alias.txt")
            #expect(inside.status == 200 && inside.bodyText == "0123456789abcdefghij")
            let head = try await Curl.request(base + "/docs/guide.txt", ["-I"])
            #expect(
                head.status == 200 && head.header("content-length") == "20" && !head.bodyText.contains("0123456789")
            )
            let post = try await Curl.request(base + "/docs/guide.txt", ["-X", "POST"])
            #expect(post.status == 405 && post.header("allow") == "GET, HEAD")
            let missing = try await Curl.request(base + "/nope.txt")
            #expect(missing.status == 404 && missing.header("content-type") == "application/problem+json")
        }
    }

    @Test("conditional requests answer 304")
    func conditional() async throws {
        try await self.withGateway { base in
            let first = try await Curl.request(base + "/docs/guide.txt")
            let etag = try #require(first.header("etag"))
            let modified = try #require(first.header("last-modified"))
            let byTag = try await Curl.request(base + "/docs/guide.txt", ["-H", "If-None-Match: \"other\", \(etag)"])
            #expect(byTag.status == 304 && byTag.body.isEmpty)
            let byDate = try await Curl.request(base + "/docs/guide.txt", ["-H", "If-Modified-Since: \(modified)"])
            #expect(byDate.status == 304)
            let changed = try await Curl.request(base + "/docs/guide.txt", ["-H", "If-None-Match: \"other\""])
            #expect(changed.status == 200)
        }
    }

    @Test("byte ranges: 206 for one range, 416 outside the file, If-Range guards them")
    func ranges() async throws {
        try await self.withGateway { base in
            let url = base + "/docs/guide.txt"
            let middle = try await Curl.request(url, ["-H", "Range: bytes=2-5"])
            #expect(middle.status == 206 && middle.bodyText == "2345")
            #expect(middle.header("content-range") == "bytes 2-5/20")
            let suffix = try await Curl.request(url, ["-H", "Range: bytes=-3"])
            #expect(suffix.status == 206 && suffix.bodyText == "hij")
            let open = try await Curl.request(url, ["-H", "Range: bytes=18-"])
            #expect(open.bodyText == "ij")
            let outside = try await Curl.request(url, ["-H", "Range: bytes=50-60"])
            #expect(outside.status == 416 && outside.header("content-range") == "bytes */20")
            let stale = try await Curl.request(url, ["-H", "Range: bytes=0-1", "-H", "If-Range: \"stale\""])
            #expect(stale.status == 200 && stale.body.count == 20)
            let etag = try #require(middle.header("etag"))
            let fresh = try await Curl.request(url, ["-H", "Range: bytes=0-1", "-H", "If-Range: \(etag)"])
            #expect(fresh.status == 206 && fresh.bodyText == "01")
        }
    }

    @Test(
        "traversal attempts never leave the root",
        arguments: [
            "/../secret.txt", "/docs/../../secret.txt", "/%2e%2e/secret.txt", "/docs/%2E%2E/%2e%2e/secret.txt",
            "/..%2fsecret.txt", "/escape.txt", "/%00index.html",
        ]
    )
    func traversal(path: String) async throws {
        try await self.withGateway { base in
            let response = try await Curl.request(base + path, ["--path-as-is"])
            #expect(!response.bodyText.contains("outside the root"))
            #expect([400, 404].contains(response.status), "\(path) gave \(response.status)")
        }
    }
}
