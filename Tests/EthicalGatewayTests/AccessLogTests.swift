import EthicalGatewayTesting
import Foundation
import NIOPosix
import Testing

@testable import EthicalGateway

/// The access log (one JSON line per request) and the gateway's own JSON log.
@Suite("Access log", .timeLimit(.minutes(5)))
struct AccessLogTests {
    @Test("every field of each line; the query (and a token in it) never appears; routes can opt out")
    func linesAndFields() async throws {
        let upstream = try await TestUpstream(name: "up") { _ in .text(status: 201, headers: [], body: "made") }
        let config = """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "accessLog": { "output": "logs/access.log" },
              "issuers": { "tests": \(RelayTokens.issuerJSON) },
              "routes": [
                { "name": "hello", "match": { "pathPrefix": "/hello" }, "backend": "hello" },
                { "name": "quiet", "match": { "path": "/quiet" }, "backend": "hello", "accessLog": false },
                { "name": "private", "match": { "pathPrefix": "/private" }, "backend": "hello",
                  "auth": { "issuers": ["tests"], "queryParameter": "token" } },
                { "name": "up", "match": { "pathPrefix": "/up" }, "backend": "up" } ],
              "backends": {
                "hello": { "plugin": "respond", "config": { "body": "hello\\n" } },
                "up": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "http://127.0.0.1:\(upstream.port)" } ] } } } }
            """
        try await LiveGateway.with(
            config: config,
            registry: gatewayRegistry,
            prepare: {
                try FileManager.default.createDirectory(
                    at: $0.url.appendingPathComponent("logs"),
                    withIntermediateDirectories: true
                )
            }
        ) { gateway in
            let base = "http://127.0.0.1:\(try #require(gateway.currentPort("http")))"
            let token = try RelayTokens.mint("alice")
            #expect(
                try await Curl.request("\(base)/hello/a?secret=query-value", ["-H", "X-Request-ID: req-one"]).status
                    == 200
            )
            #expect(try await Curl.request("\(base)/hello/b", ["--data-binary", "0123456789"]).status == 200)
            #expect(try await Curl.request("\(base)/quiet").status == 200)
            #expect(try await Curl.request("\(base)/private?token=\(token)").status == 200)
            #expect(try await Curl.request("\(base)/private?token=not-a-jwt-SECRETISH").status == 401)
            #expect(try await Curl.request("\(base)/up/x", ["--http1.0"]).status == 201)
            #expect(try await Curl.request("\(base)/nowhere").status == 404)

            let file = gateway.directory.url.appendingPathComponent("logs/access.log")
            var text = ""
            try await waitUntil("six lines are logged", seconds: 20) {
                text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
                return text.split(separator: "\n").count >= 6
            }
            #expect(!text.contains("query-value") && !text.contains(token) && !text.contains("SECRETISH"), "\(text)")
            let lines = try text.split(separator: "\n").map {
                try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any], "\($0)")
            }
            #expect(lines.count == 6, "\(text)")
            #expect(!lines.contains { $0["route"] as? String == "quiet" })
            let first = try #require(lines.first { $0["requestId"] as? String == "req-one" })
            let time = try #require(first["time"] as? String)
            #expect(
                time.range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"#, options: .regularExpression) != nil
            )
            #expect(first["client"] as? String == "127.0.0.1")
            #expect(first["method"] as? String == "GET")
            #expect((first["host"] as? String)?.hasPrefix("127.0.0.1") == true)
            #expect(first["path"] as? String == "/hello/a")
            #expect(first["protocol"] as? String == "HTTP/1.1")
            #expect(first["status"] as? Int == 200)
            #expect(first["requestBytes"] as? Int == 0)
            #expect(first["responseBytes"] as? Int == 6)
            #expect((first["duration"] as? Double ?? -1) >= 0)
            #expect(first["route"] as? String == "hello")
            #expect(first["backend"] as? String == "hello")
            let post = try #require(lines.first { $0["method"] as? String == "POST" })
            #expect(post["requestBytes"] as? Int == 10)
            let admitted = try #require(
                lines.first { $0["route"] as? String == "private" && $0["status"] as? Int == 200 }
            )
            #expect(admitted["subject"] as? String == "alice")
            #expect(admitted["path"] as? String == "/private")
            let refused = try #require(
                lines.first { $0["route"] as? String == "private" && $0["status"] as? Int == 401 }
            )
            #expect(refused["authRefusal"] as? String == "malformed")
            let proxied = try #require(lines.first { $0["route"] as? String == "up" })
            #expect(proxied["upstream"] as? String == "http://127.0.0.1:\(upstream.port)")
            #expect(proxied["protocol"] as? String == "HTTP/1.0")
            #expect(proxied["status"] as? Int == 201)
            let unrouted = try #require(lines.first { $0["status"] as? Int == 404 })
            #expect(unrouted["route"] == nil)
        }
        await upstream.stop()
    }

    @Test("the sample rate keeps that share of responses; 5xx are always logged")
    func sampling() async throws {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        var none = AccessLogConfiguration()
        none.sampleRate = 0
        var half = AccessLogConfiguration()
        half.sampleRate = 0.5
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let never = AccessLogWriter(
            none,
            configDirectory: directory.url,
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton
        )
        let sometimes = AccessLogWriter(
            half,
            configDirectory: directory.url,
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton
        )
        let (okNever, errorsNever, okHalf) = try await eventLoop.submit {
            (
                (0..<1000).filter { _ in never.sample(status: 200, on: eventLoop) }.count,
                (0..<1000).filter { _ in never.sample(status: 503, on: eventLoop) }.count,
                (0..<10000).filter { _ in sometimes.sample(status: 200, on: eventLoop) }.count
            )
        }.get()
        #expect(okNever == 0)
        #expect(errorsNever == 1000)
        #expect((4500...5500).contains(okHalf), "\(okHalf)")
    }

    @Test("logFormat json: every line the gateway itself logs is a JSON object")
    func jsonLogFormat() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.write(
            """
            { "logFormat": "json", "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "routes": [ { "backend": "hello" } ], "backends": { "hello": { "plugin": "respond", "config": {} } } }
            """,
            to: "gateway.json"
        )
        let gateway = try await GatewayProcess(arguments: ["run", "--config", file.path], expectedListeners: 0)
        defer { _ = gateway.stop() }
        try await waitUntil("the gateway logs that it listens", seconds: 30) {
            gateway.log.contains("\"message\":\"listening\"")
        }
        #expect(gateway.stop() == 0)
        let lines = gateway.log.split(separator: "\n")
        #expect(lines.count >= 3)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["level"] is String && object?["message"] is String, "\(line)")
        }
        #expect(gateway.log.contains(#""listener":"http""#), "\(gateway.log)")
    }
}
