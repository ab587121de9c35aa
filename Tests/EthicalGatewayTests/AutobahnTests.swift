import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// The Autobahn|Testsuite fuzzing client (`wstest -m fuzzingclient`, an implementation that is
/// not ours) against a `websocket-echo` route: framing, pings, reserved bits and opcodes,
/// fragmentation, UTF-8 (fail fast), close handling, and permessage-deflate. The whole suite,
/// with its long performance (9.*) and compression (12.*, 13.*) series, is
/// `scripts/autobahn.sh`; this runs a subset that finishes in about half a minute.
@Suite("WebSocket layer: Autobahn|Testsuite subset", .timeLimit(.minutes(3)))
struct AutobahnTests {
    static let cases = "1.*,2.*,3.*,4.*,5.*,6.*,7.*,10.*,12.1.1,12.2.1,13.1.1,13.3.1,13.5.1,13.7.1"

    @Test("every case of the subset is OK, NON-STRICT or INFORMATIONAL")
    func fuzzingClientSubset() async throws {
        let config = """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "routes": [ { "name": "echo", "match": { "pathPrefix": "/echo" }, "backend": "echo" } ],
              "backends": { "echo": { "plugin": "websocket-echo", "config": {} } } }
            """
        let report = try TemporaryDirectory()
        defer { report.remove() }
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            let output = try await ProcessRunner.run(
                "bash",
                [
                    repositoryRoot.appendingPathComponent("scripts/autobahn.sh").path,
                    "--url", "ws://127.0.0.1:\(gateway.port("http"))/echo",
                    "--cases", Self.cases, "--out", report.url.path,
                ],
                timeout: 150
            )
            #expect(output.exitCode == 0, "\(output.standardOutput)\(output.standardError.suffix(3000))")
            let index = try JSONSerialization.jsonObject(
                with: Data(contentsOf: report.url.appendingPathComponent("index.json"))
            )
            let cases = try #require((index as? [String: Any])?["ethical-gateway"] as? [String: [String: Any]])
            #expect(cases.count > 250, "\(cases.count) cases ran")
            let passing: Set<String> = ["OK", "NON-STRICT", "INFORMATIONAL"]
            let failing = cases.filter { !passing.contains($0.value["behavior"] as? String ?? "") }.keys.sorted()
            #expect(failing.isEmpty, "not passing: \(failing)")
            // Invalid UTF-8 closes with 1007, a bad close code with 1002.
            #expect(cases["6.3.1"]?["remoteCloseCode"] as? Int == 1007)
            #expect(cases["7.9.1"]?["remoteCloseCode"] as? Int == 1002)
        }
    }
}
