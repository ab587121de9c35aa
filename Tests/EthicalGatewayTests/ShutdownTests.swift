import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

@Suite("Graceful shutdown")
struct ShutdownTests {
    static func config(grace: Double, delayMilliseconds: Int, arrivalKey: String = "") -> String {
        """
        { "shutdownGracePeriodSeconds": \(grace),
          "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 }, { "name": "https", "address": "127.0.0.1", "port": 0, "tls": {} } ],
          "routes": [ { "match": { "path": "/slow" }, "backend": "slow" }, { "backend": "fast" } ],
          "backends": { "slow": { "plugin": "test-slow", "config": { "delayMilliseconds": \(delayMilliseconds), "body": "finished", "arrivalKey": "\(arrivalKey)" } },
                        "fast": { "plugin": "respond", "config": { "body": "fast" } } } }
        """
    }

    @Test(
        "in-flight requests finish; new connections are refused",
        arguments: [("http", "--http1.1"), ("https", "--http2")]
    )
    func drains(scheme: String, flag: String) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let arrivalKey = UUID().uuidString
        let configFile = try directory.write(
            Self.config(grace: 10, delayMilliseconds: 1500, arrivalKey: arrivalKey),
            to: "gateway.json"
        )
        let gateway = try await LiveGateway.start(configFile: configFile, directory: directory, registry: testRegistry)
        let port = gateway.port(scheme)
        let inFlight = Task { try await Curl.request("\(scheme)://127.0.0.1:\(port)/slow", [flag]) }
        // Wait until the request is really in flight: the slow backend has it.
        #expect(try await SlowBackendPlugin.waitForArrivals(arrivalKey), "the request never reached the backend")
        await gateway.beginShutdown()
        // The listener closes as soon as the shutdown is processed; poll (bounded) until it has.
        var refused = false
        for _ in 0..<50 where !refused {
            do {
                _ = try await Curl.request("\(scheme)://127.0.0.1:\(port)/", [flag], timeout: 3)
                try await Task.sleep(for: .milliseconds(100))
            } catch is CurlError {
                refused = true
            }
        }
        #expect(refused, "new connections were still accepted after the shutdown began")
        let response = try await inFlight.value
        #expect(response.status == 200 && response.bodyText == "finished")
        try await gateway.shutdown()
    }

    @Test("connections still busy after the grace period are closed")
    func gracePeriod() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let arrivalKey = UUID().uuidString
        let configFile = try directory.write(
            // 90 s: far from what a loaded machine adds to the 0.3 s grace period (the whole suite
            // shares two cores with gateway processes and Redis servers; 25 s from the request's
            // start was seen), so only a gateway that does not cut the request can reach it.
            Self.config(grace: 0.3, delayMilliseconds: 90_000, arrivalKey: arrivalKey),
            to: "gateway.json"
        )
        let gateway = try await LiveGateway.start(configFile: configFile, directory: directory, registry: testRegistry)
        let started = Date()
        let inFlight = Task { try await Curl.request("http://127.0.0.1:\(gateway.port("http"))/slow", timeout: 120) }
        #expect(try await SlowBackendPlugin.waitForArrivals(arrivalKey), "the request never reached the backend")
        let shutdownStarted = Date()
        try await gateway.shutdown()
        let shutdownTook = Date().timeIntervalSince(shutdownStarted)
        var outcome = "no error"
        await #expect(throws: CurlError.self) {
            do { _ = try await inFlight.value } catch { outcome = "\(error)"; throw error }
        }
        #expect(
            Date().timeIntervalSince(started) < 60,
            "the 90 s request must be cut by the 0.3 s grace period; shutdown took \(shutdownTook) s; curl: \(outcome)"
        )
    }
}
