import EthicalGatewayTesting
import Foundation
import Testing

@testable import EthicalGateway

/// W3C Trace Context: accepted, continued and passed on to upstreams; in problem documents and the
/// access log.
@Suite("Trace context", .timeLimit(.minutes(5)))
struct TraceContextTests {
    static let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @Test("traceparent is parsed as the W3C rules say; anything invalid starts a new trace")
    func parsing() {
        #expect(TraceContext.parse(Self.incoming)?.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(TraceContext.parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")?.flags == "01")
        for invalid in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // upper case
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // zero parent
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // version ff
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // version 00 is exactly 55
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", "", "garbage",
        ] {
            #expect(TraceContext.parse(invalid) == nil, "\(invalid)")
        }
        let fresh = TraceContext.make(traceparent: "garbage", tracestate: "a=b")
        #expect(fresh.traceID.count == 32 && fresh.spanID.count == 16 && fresh.parentSpanID == nil)
        #expect(fresh.traceState == nil)
        #expect(TraceContext.parse(fresh.traceparent) != nil)
        #expect(TraceContext.make(traceparent: nil, tracestate: nil).traceID != fresh.traceID)
    }

    @Test("an upstream gets the caller's trace with the gateway's span as parent; a new trace without one")
    func propagation() async throws {
        let upstream = try await TestUpstream(name: "traced")
        let config = """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "accessLog": { "output": "access.log" },
              "routes": [ { "name": "up", "match": { "pathPrefix": "/up" }, "backend": "up" } ],
              "backends": { "up": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "http://127.0.0.1:\(upstream.port)" } ] } } } }
            """
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            let base = "http://127.0.0.1:\(try #require(gateway.currentPort("http")))"
            _ = try await Curl.request(
                "\(base)/up/1",
                ["-H", "traceparent: \(Self.incoming)", "-H", "tracestate: rojo=00f067aa0ba902b7"]
            )
            let continued = try #require(upstream.requests.last)
            let forwarded = try #require(continued.header("traceparent"))
            let parts = forwarded.split(separator: "-")
            #expect(parts.count == 4 && parts[0] == "00" && parts[3] == "01", "\(forwarded)")
            #expect(parts[1] == "4bf92f3577b34da6a3ce929d0e0e4736")
            #expect(parts[2] != "00f067aa0ba902b7" && parts[2].count == 16)
            #expect(continued.header("tracestate") == "rojo=00f067aa0ba902b7")

            _ = try await Curl.request("\(base)/up/2")
            let started = try #require(upstream.requests.last?.header("traceparent"))
            let newTrace = try #require(TraceContext.parse(started))
            #expect(newTrace.traceID != "4bf92f3577b34da6a3ce929d0e0e4736")
            #expect(upstream.requests.last?.header("tracestate") == nil)

            // The trace id is in problem documents and in the access log.
            let missing = try await Curl.request("\(base)/nowhere", ["-H", "traceparent: \(Self.incoming)"])
            #expect(missing.status == 404)
            let problem = try JSONSerialization.jsonObject(with: missing.body) as? [String: Any]
            #expect(problem?["traceId"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736", "\(missing.bodyText)")
            let log = gateway.directory.url.appendingPathComponent("access.log")
            try await waitUntil("three lines are logged", seconds: 20) {
                ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").count >= 3
            }
            let lines = try String(contentsOf: log, encoding: .utf8)
            #expect(lines.contains(#""traceId":"\#(newTrace.traceID)""#), "\(lines)")
        }
        await upstream.stop()
    }
}
