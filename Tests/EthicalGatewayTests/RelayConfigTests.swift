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

    @Test("serverSideSubscriptions is a boolean, named with its path when it is not")
    func serverSideSubscriptionsType() async throws {
        let issues = try await Self.issues(#"{ "namespaces": { "news": { "serverSideSubscriptions": "yes" } } }"#)
        #expect(
            issues.contains { $0.hasPrefix("$.backends.relay.config.namespaces.news.serverSideSubscriptions") },
            "\(issues)"
        )
        #expect(try await Self.issues(#"{ "namespaces": { "news": { "serverSideSubscriptions": true } } }"#).isEmpty)
    }

    @Test("a short API key is refused")
    func shortKey() async throws {
        let issues = try await Self.issues(#"{ "apiKeyFile": "api.key" }"#, files: ["api.key": "short\n"])
        #expect(issues.contains { $0.contains("apiKeyFile") && $0.contains("shorter than 16") }, "\(issues)")
    }

    @Test("a Redis engine's problems are named with their paths, all in one pass")
    func engineProblems() async throws {
        let missingAddresses = try await Self.issues(#"{ "engine": { "type": "redis" } }"#)
        #expect(
            missingAddresses.contains {
                $0.hasPrefix("$.backends.relay.config.engine.addresses: a redis engine needs at least one address")
            },
            "\(missingAddresses)"
        )
        let issues = try await Self.issues(
            """
            { "engine": { "type": "redis", "addresses": ["http://127.0.0.1:6379", "redis://127.0.0.1:6379",
                                                          "redis://127.0.0.1:6379"],
                          "prefix": "has space", "presenceTTLSeconds": 1, "commandTimeoutSeconds": 0,
                          "streamMetaTTLSeconds": 100, "passwordFile": "missing.password",
                          "tls": { "caFile": "missing.pem" } },
              "namespaces": { "chat": { "historySize": 10, "historyTTLSeconds": 600 } } }
            """
        )
        let expectedPrefixes = [
            "$.backends.relay.config.engine.addresses[0]:",
            "$.backends.relay.config.engine.addresses[2]: redis://127.0.0.1:6379 is listed twice",
            "$.backends.relay.config.engine.prefix: expected 1 to 64 letters",
            "$.backends.relay.config.engine.presenceTTLSeconds: expected 5 to 3600 seconds, found 1",
            "$.backends.relay.config.engine.commandTimeoutSeconds: expected 0.05 to 60 seconds, found 0",
            "$.backends.relay.config.engine.streamMetaTTLSeconds: expected 600 (the longest historyTTLSeconds",
            "$.backends.relay.config.engine.passwordFile: cannot read",
            "$.backends.relay.config.engine.tls.caFile:",
        ]
        for prefix in expectedPrefixes {
            #expect(issues.contains { $0.hasPrefix(prefix) }, "missing \(prefix) in \(issues)")
        }
        #expect(issues.contains { $0.contains("addresses[0]") && $0.contains("redis://") }, "\(issues)")
    }

    @Test("a memory engine refuses Redis settings, and unknown engine types and keys are named")
    func engineKinds() async throws {
        let memory = try await Self.issues(
            #"{ "engine": { "type": "memory", "addresses": ["redis://127.0.0.1:6379"] } }"#
        )
        #expect(
            memory.contains {
                $0 == "$.backends.relay.config.engine.addresses: only an engine of type \"redis\" takes addresses"
            },
            "\(memory)"
        )
        let unknown = try await Self.issues(#"{ "engine": { "type": "cluster" } }"#)
        #expect(
            unknown.contains {
                $0.contains("$.backends.relay.config.engine.type") && $0.contains(#"expected one of "memory", "redis""#)
            },
            "\(unknown)"
        )
        let misspelt = try await Self.issues(#"{ "engine": { "type": "redis", "adresses": [] } }"#)
        #expect(misspelt.contains { $0.contains("engine.adresses") }, "\(misspelt)")
        #expect(
            try await Self.issues(#"{ "engine": { "type": "redis", "addresses": ["redis://127.0.0.1:1"] } }"#).isEmpty
        )
    }
}
