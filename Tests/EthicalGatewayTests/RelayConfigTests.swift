import EthicalGateway
import EthicalGatewayTesting
import Testing

/// A broken relay configuration is refused with every problem and its JSON path.
@Suite("Fluxer Relay: configuration errors")
struct RelayConfigTests {
    static func issues(_ relay: String, files: [String: String] = [:]) async throws -> [String] {
        let config = plainConfig(
            routes: #"[ { "name": "r", "match": { "pathPrefix": "/relay" }, "backend": "relay" } ]"#,
            backends: #"{ "relay": { "plugin": "fluxer-relay", "config": \#(relay) } }"#,
            extra: #""issuers": { "tests": \#(RelayTokens.issuerJSON) }"#
        )
        return try await configIssues(config, files: files).map(\.description)
    }

    @Test("an empty config is a working relay")
    func defaults() async throws {
        #expect(try await Self.issues("{}").isEmpty)
    }

    @Test("every problem is named with its path")
    func everyProblem() async throws {
        let issues = try await Self.issues(
            """
            { "issuers": ["tests", "nobody"], "pingIntervalSeconds": 0, "apiKeyFile": "missing.key",
              "namespaces": { "bad name": {}, "chat": { "historySize": 0, "recovery": true, "joinLeave": true } } }
            """
        )
        let expected = [
            "$.backends.relay.config.issuers[1]: no issuer \"nobody\" under $.issuers",
            "$.backends.relay.config.pingIntervalSeconds: expected 1 to 3600, found 0",
            "$.backends.relay.config.namespaces.bad name: a namespace name is 1 to 64 letters, digits, '_' or '-'",
            "$.backends.relay.config.namespaces.chat.recovery: recovery needs history: set historySize above 0",
            "$.backends.relay.config.namespaces.chat.joinLeave: join and leave pushes need presence: set presence to true",
        ]
        for line in expected { #expect(issues.contains(line), "\(issues)") }
        #expect(issues.contains { $0.hasPrefix("$.backends.relay.config.apiKeyFile: cannot read") }, "\(issues)")
    }

    @Test("unknown keys and wrong enum values list what is accepted")
    func strictKeys() async throws {
        let issues = try await Self.issues(#"{ "namespaces": { "chat": { "publish": "everyone", "colour": 1 } } }"#)
        #expect(
            issues.contains {
                $0.contains("$.backends.relay.config.namespaces.chat.publish")
                    && $0.contains(#"expected one of "none", "subscribers", "scope", "any""#)
            },
            "\(issues)"
        )
    }

    @Test("a short API key is refused")
    func shortKey() async throws {
        let issues = try await Self.issues(#"{ "apiKeyFile": "api.key" }"#, files: ["api.key": "short\n"])
        #expect(issues.contains { $0.contains("apiKeyFile") && $0.contains("shorter than 16") }, "\(issues)")
    }
}
