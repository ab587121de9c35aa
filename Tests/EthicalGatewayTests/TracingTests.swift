import EthicalGatewayTesting
import Foundation
import Logging
import Testing

@testable import EthicalGateway

/// Spans over OTLP/HTTP: a server span per request and a client span per upstream attempt,
/// received by a collector that decodes them with the OpenTelemetry project's own classes.
@Suite("Tracing (OTLP)", .timeLimit(.minutes(5)))
struct TracingTests {
    static let incomingTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let incomingParent = "00f067aa0ba902b7"

    /// A collector process writing the spans it receives to a file.
    struct Collector {
        let process: ChildProcess
        let port: Int
        let spansFile: URL

        static func start(in directory: TemporaryDirectory) async throws -> Collector {
            let script = repositoryRoot.appendingPathComponent("Tests/EthicalGatewayTests/Fixtures/otlp_collector.py")
            let spansFile = directory.url.appendingPathComponent("spans.jsonl")
            let process = try ChildProcess("/usr/bin/env", ["python3", script.path, spansFile.path])
            let line = try await process.firstLine(timeout: 30).trimmingCharacters(in: .whitespaces)
            guard let port = Int(line) else {
                process.stop()
                throw AdminTestError(message: "the collector did not start: \(line)")
            }
            return Collector(process: process, port: port, spansFile: spansFile)
        }

        var spans: [[String: Any]] {
            let text = (try? String(contentsOf: self.spansFile, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }

        /// Waits until `count` spans matching `filter` arrived.
        func waitForSpans(
            _ count: Int,
            where filter: @escaping ([String: Any]) -> Bool = { _ in true }
        ) async throws -> [[String: Any]] {
            try await waitUntil("\(count) spans reach the collector", seconds: 30) {
                self.spans.filter(filter).count >= count
            }
            return self.spans.filter(filter)
        }
    }

    static func attributes(_ span: [String: Any]) -> [String: Any] { span["attributes"] as? [String: Any] ?? [:] }
    static func statusCode(_ span: [String: Any]) -> Int? { (span["status"] as? [String: Any])?["code"] as? Int }

    @Test(
        "a proxied request's server and client spans reach the collector, joined to the caller's and upstream's trace"
    )
    func spansOverProtobuf() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let collector = try await Collector.start(in: directory)
        defer { collector.process.stop() }
        let upstream = try await TestUpstream(name: "traced")
        let closed = try ClosedPort()
        defer { closed.release() }
        let config = """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "accessLog": { "output": "access.log" },
              "tracing": { "endpoint": "http://127.0.0.1:\(collector.port)/v1/traces", "serviceName": "edge-test",
                           "exportDelaySeconds": 0.2 },
              "routes": [ { "name": "up", "match": { "pathPrefix": "/up" }, "backend": "up" },
                          { "name": "down", "match": { "pathPrefix": "/down" }, "backend": "down" } ],
              "backends": {
                "up": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "http://127.0.0.1:\(upstream.port)" } ] } },
                "down": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "\(closed.url)" } ] } } } }
            """
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            let base = "http://127.0.0.1:\(try #require(gateway.currentPort("http")))"
            let traceparent = "00-\(Self.incomingTrace)-\(Self.incomingParent)-01"
            #expect(
                try await Curl.request("\(base)/up/1?token=secret", ["-H", "traceparent: \(traceparent)"]).status == 200
            )
            let missing = try await Curl.request("\(base)/nowhere")
            #expect(missing.status == 404)
            #expect(try await Curl.request("\(base)/down/x").status == 502)

            let spans = try await collector.waitForSpans(5)
            #expect(spans.allSatisfy { $0["service"] as? String == "edge-test" })

            // The server span continues the caller's trace, under the caller's span.
            let server = try #require(
                spans.first { Self.attributes($0)["gateway.route"] as? String == "up" && $0["kind"] as? Int == 2 }
            )
            #expect(server["traceId"] as? String == Self.incomingTrace)
            #expect(server["parentSpanId"] as? String == Self.incomingParent)
            #expect(server["name"] as? String == "GET up")
            let serverAttributes = Self.attributes(server)
            #expect(serverAttributes["http.response.status_code"] as? Int == 200)
            #expect(serverAttributes["http.request.method"] as? String == "GET")
            #expect(serverAttributes["url.path"] as? String == "/up/1", "the query (and its token) stays out")
            #expect(serverAttributes["gateway.backend"] as? String == "up")

            // The attempt's client span is its child, and the upstream's parent.
            let client = try #require(spans.first { $0["parentSpanId"] as? String == server["spanId"] as? String })
            #expect(client["kind"] as? Int == 3)
            #expect(client["traceId"] as? String == Self.incomingTrace)
            #expect(Self.attributes(client)["server.port"] as? Int == upstream.port)
            #expect(Self.attributes(client)["http.response.status_code"] as? Int == 200)
            let forwarded = try #require(upstream.requests.last?.header("traceparent"))
            #expect(forwarded == "00-\(Self.incomingTrace)-\(try #require(client["spanId"] as? String))-01")

            // A request without traceparent starts a trace: its span is a root, and its id is
            // the one in the problem document.
            let problem = try JSONSerialization.jsonObject(with: missing.body) as? [String: Any]
            let missingTrace = try #require(problem?["traceId"] as? String)
            let unrouted = try #require(spans.first { $0["traceId"] as? String == missingTrace })
            #expect(unrouted["parentSpanId"] as? String == "")
            #expect(Self.attributes(unrouted)["http.response.status_code"] as? Int == 404)
            #expect(Self.statusCode(unrouted) != 2, "a 4xx answer is not a server error")

            // A failed attempt is an error span; so is the 502 it leads to.
            let failed = try #require(spans.first { Self.attributes($0)["server.port"] as? Int == closed.port })
            #expect(Self.statusCode(failed) == 2)
            let failedServer = try #require(
                spans.first { $0["spanId"] as? String == failed["parentSpanId"] as? String }
            )
            #expect(Self.attributes(failedServer)["http.response.status_code"] as? Int == 502)
            #expect(Self.statusCode(failedServer) == 2)

            // The access log names the same trace.
            let log = gateway.directory.url.appendingPathComponent("access.log")
            try await waitUntil("three lines are logged", seconds: 20) {
                ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").count >= 3
            }
            #expect(try String(contentsOf: log, encoding: .utf8).contains(#""traceId":"\#(Self.incomingTrace)""#))
        }
        await upstream.stop()
    }

    @Test("sampleRatio 0 records no new trace but follows a sampled caller")
    func sampling() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let collector = try await Collector.start(in: directory)
        defer { collector.process.stop() }
        let upstream = try await TestUpstream(name: "sampled")
        let config = """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "tracing": { "endpoint": "http://127.0.0.1:\(collector.port)/v1/traces",
                           "sampleRatio": 0, "exportDelaySeconds": 0.2 },
              "routes": [ { "name": "up", "backend": "up" } ],
              "backends": { "up": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "http://127.0.0.1:\(upstream.port)" } ] } } } }
            """
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            let base = "http://127.0.0.1:\(try #require(gateway.currentPort("http")))"
            // Not sampled: a new trace under ratio 0. Its upstream is told so (flags 00).
            #expect(try await Curl.request("\(base)/first").status == 200)
            let unsampled = try #require(upstream.requests.last?.header("traceparent"))
            #expect(unsampled.hasSuffix("-00"), "\(unsampled)")
            // Sampled: the caller said so.
            let traceparent = "00-\(Self.incomingTrace)-\(Self.incomingParent)-01"
            #expect(try await Curl.request("\(base)/second", ["-H", "traceparent: \(traceparent)"]).status == 200)
            let spans = try await collector.waitForSpans(2)
            #expect(spans.allSatisfy { $0["traceId"] as? String == Self.incomingTrace }, "\(spans)")
            #expect(Set(spans.compactMap { $0["kind"] as? Int }) == [2, 3])
        }
        await upstream.stop()
    }

    @Test("a reload to another collector flushes the old exporter's queue and sends new spans to the new one")
    func reloadSwitchesCollector() async throws {
        let firstDirectory = try TemporaryDirectory()
        defer { firstDirectory.remove() }
        let secondDirectory = try TemporaryDirectory()
        defer { secondDirectory.remove() }
        let first = try await Collector.start(in: firstDirectory)
        defer { first.process.stop() }
        let second = try await Collector.start(in: secondDirectory)
        defer { second.process.stop() }
        func config(_ collector: Collector, delay: Double) -> String {
            """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "tracing": { "endpoint": "http://127.0.0.1:\(collector.port)/v1/traces", "exportDelaySeconds": \(delay) },
              "routes": [ { "name": "hello", "backend": "hello" } ],
              "backends": { "hello": { "plugin": "respond", "config": { "body": "hello" } } } }
            """
        }
        // The first exporter would hold its spans for a minute: only the flush at retirement sends them.
        try await LiveGateway.with(config: config(first, delay: 60), registry: gatewayRegistry) { gateway in
            let base = "http://127.0.0.1:\(try #require(gateway.currentPort("http")))"
            #expect(try await Curl.request("\(base)/before").status == 200)
            try config(second, delay: 0.2).write(
                to: gateway.directory.url.appendingPathComponent("gateway.json"),
                atomically: true,
                encoding: .utf8
            )
            let reloaded = await gateway.controller.reloadFile(trigger: "test")
            #expect((try? reloaded.get()) != nil)
            #expect(try await Curl.request("\(base)/after").status == 200)
            let before = try await first.waitForSpans(1)
            #expect(before.map { Self.attributes($0)["url.path"] as? String } == ["/before"])
            let after = try await second.waitForSpans(1)
            #expect(after.map { Self.attributes($0)["url.path"] as? String } == ["/after"])
        }
    }

    @Test("a collector that never answers holds the shutdown for the grace period at most, not the export timeout")
    func shutdownWithDeadCollector() async throws {
        // Accepts connections (into its backlog) and never answers them.
        let blackHole = try RawListener(backlog: 16)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let configFile = try directory.write(
            """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "shutdownGracePeriodSeconds": 2,
              "tracing": { "endpoint": "http://127.0.0.1:\(blackHole.port)/v1/traces",
                           "exportDelaySeconds": 0.2, "exportTimeoutSeconds": 60 },
              "routes": [ { "name": "hello", "backend": "hello" } ],
              "backends": { "hello": { "plugin": "respond", "config": { "body": "hello" } } } }
            """,
            to: "gateway.json"
        )
        let gateway = try await LiveGateway.start(
            configFile: configFile,
            directory: directory,
            registry: gatewayRegistry
        )
        let base = "http://127.0.0.1:\(try #require(gateway.currentPort("http")))"
        // Requests are not slowed by the dead collector, and leave spans queued behind it.
        for _ in 0..<3 { #expect(try await Curl.request("\(base)/x", timeout: 10).status == 200) }
        try await Task.sleep(for: .milliseconds(500))
        let started = ContinuousClock.now
        try await gateway.shutdown()
        let took = ContinuousClock.now - started
        // 60 s (the export timeout) before the bound; the 2 s grace period of flush plus the
        // gateway's own stop now.
        #expect(took < .seconds(30), "the shutdown took \(took)")
        withExtendedLifetime(blackHole) {}
    }

    @Test("sampling is decided before a span is made: the caller's flag, else the ratio")
    func samplingDecision() {
        var settings = TracingConfiguration(endpoint: "http://127.0.0.1:1/v1/traces")
        settings.sampleRatio = 0.5
        let tracer = RequestTracer(settings, logger: Logger(label: "test"))
        let sampled = (0..<10_000).filter { _ in tracer.isSampled(nil) }.count
        #expect((4_500...5_500).contains(sampled), "\(sampled)")
        let recorded = TraceContext.make(
            traceparent: "00-\(Self.incomingTrace)-\(Self.incomingParent)-01",
            tracestate: nil
        )
        let dropped = TraceContext.make(
            traceparent: "00-\(Self.incomingTrace)-\(Self.incomingParent)-00",
            tracestate: nil
        )
        settings.sampleRatio = 0
        let never = RequestTracer(settings, logger: Logger(label: "test"))
        #expect(never.isSampled(recorded) && !never.isSampled(dropped) && !never.isSampled(nil))
        settings.sampleRatio = 1
        #expect(!RequestTracer(settings, logger: Logger(label: "test")).isSampled(dropped))
    }

    @Test("tracing configuration errors name their JSON path")
    func configurationErrors() async throws {
        func issues(_ tracing: String) async throws -> [String] {
            let json = plainConfig(
                routes: #"[ { "backend": "ok" } ]"#,
                backends: #"{ "ok": { "plugin": "respond", "config": {} } }"#,
                extra: #""tracing": \#(tracing)"#
            )
            return try await configIssues(json).map { "\($0.path): \($0.message)" }
        }
        #expect(try await issues(#"{ "endpoint": "http://127.0.0.1:4318/v1/traces" }"#) == [])
        #expect(
            try await issues(#"{ "endpoint": "ftp://collector/v1/traces" }"#)
                == [
                    #"$.tracing.endpoint: expected an http:// or https:// URL of an OTLP/HTTP traces endpoint, found "ftp://collector/v1/traces""#
                ]
        )
        #expect(
            try await issues(#"{ "endpoint": "http://c:4318/v1/traces", "protocol": "grpc" }"#)
                == [#"$.tracing.protocol: expected "http/protobuf", found "grpc""#]
        )
        #expect(
            try await issues(#"{ "endpoint": "http://c:4318/v1/traces", "protocol": "http/json" }"#).first?.hasPrefix(
                #"$.tracing.protocol: "http/json" is not offered"#
            ) == true
        )
        #expect(
            try await issues(#"{ "endpoint": "http://c:4318/v1/traces", "sampleRatio": 2 }"#)
                == [#"$.tracing.sampleRatio: expected a number from 0 to 1, found 2.0"#]
        )
        #expect(
            try await issues(#"{ "endpoint": "http://c:4318/v1/traces", "headers": { "bad name": "x" } }"#)
                == [#"$.tracing.headers: "bad name" is not a valid header field name with a single-line value"#]
        )
        let missing = try await issues(#"{ "sampleRatio": 1 }"#)
        #expect(
            missing.first?.hasPrefix("$.tracing") == true && missing.first?.contains("endpoint") == true,
            "\(missing)"
        )
        #expect(
            try await issues(#"{ "endpoint": "http://c:4318/v1/traces", "colour": 1 }"#).first?.hasPrefix(
                #"$.tracing.colour: unknown key "colour""#
            ) == true
        )
    }
}
