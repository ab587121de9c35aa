import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

@Suite("Configuration: one meaning per document, every error at once")
struct ConfigStrictnessTests {
    @Test("a duplicate key is an error with its JSON path, not a silent first-wins")
    func duplicateKeys() async throws {
        let issues = try await configIssues(
            """
            { "listeners": [ { "address": "127.0.0.1", "port": 0 } ],
              "issuers": { "dev": { "development": true } },
              "routes": [ { "backend": "ok",
                            "auth": { "issuers": ["dev"], "anonymous": true },
                            "auth": { "issuers": ["dev"], "scopes": ["demo"] } } ],
              "backends": { "ok": { "plugin": "respond", "config": { "status": 200, "status": 201 } } } }
            """
        )
        #expect(issues.map(\.path) == ["$.routes[0].auth", "$.backends.ok.config.status"])
        #expect(issues.allSatisfy { $0.message.contains("duplicate key") })
    }

    @Test("every bad limit is reported, not only the first")
    func everyLimit() async throws {
        let issues = try await configIssues(
            plainConfig(
                routes: #"[{"backend": "ok"}]"#,
                backends: #"{"ok": {"plugin": "respond"}}"#,
                extra: #""limits": { "maxHeaderBytes": 0, "maxURIBytes": -5, "idleTimeoutSeconds": "soon" }"#
            )
        )
        #expect(
            Set(issues.map(\.path)) == [
                "$.limits.maxHeaderBytes", "$.limits.maxURIBytes", "$.limits.idleTimeoutSeconds",
            ]
        )
    }

    @Test("head limits beyond what the HTTP/1.1 parser accepts (80 KiB) are refused")
    func headLimitsWithinParser() async throws {
        let issues = try await configIssues(
            plainConfig(
                routes: #"[{"backend": "ok"}]"#,
                backends: #"{"ok": {"plugin": "respond"}}"#,
                extra: #""limits": { "maxHeaderBytes": 2097152 }"#
            )
        )
        #expect(issues.map(\.path) == ["$.limits"])
        #expect(issues.first?.message.contains("81920") == true)
    }

    @Test("a number out of range names its path instead of a raw decoding error")
    func numberOutOfRange() async throws {
        let issues = try await configIssues(
            #"{ "listeners": [ { "address": "127.0.0.1", "port": 1e400 } ], "routes": [], "backends": {} }"#
        )
        #expect(issues.count == 1)
        #expect(issues.first?.path == "$.listeners[0].port")
        #expect(issues.first?.message.contains("out of range") == true)
        #expect(issues.first?.message.contains("DecodingError") == false)
    }

    @Test("a huge bad value is not echoed whole")
    func hugeValue() async throws {
        let huge = String(repeating: "a", count: 10_000_000)
        let issues = try await configIssues(
            plainConfig(
                routes: #"[{"backend": "ok", "match": { "pathPrefix": "\#(huge)" } }]"#,
                backends: #"{"ok": {"plugin": "respond"}}"#
            )
        )
        #expect(issues.count == 1)
        #expect(issues.first?.path == "$.routes[0].match.pathPrefix")
        #expect((issues.first?.message.utf8.count ?? .max) < 1_000)
    }

    @Test("syntax errors name line and column; deep nesting is refused")
    func syntax() async throws {
        let issues = try await configIssues("{\n  \"listeners\": [ ,\n}")
        #expect(issues.first?.message.contains("line 2, column 18") == true)
        let deep = String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000)
        let nested = try await configIssues(deep)
        #expect(nested.first?.message.contains("nesting deeper") == true)
    }

    @Test("route paths are stored canonical; encoded slashes in them are refused; escapedSlashes is checked")
    func routePaths() async throws {
        let issues = try await configIssues(
            plainConfig(
                routes: """
                    [ { "backend": "ok", "match": { "pathPrefix": "/a%2Fb" } },
                      { "backend": "ok", "match": { "path": "/x/../%00" } },
                      { "backend": "ok", "match": { "pathPrefix": "/caf%c3%a9" }, "escapedSlashes": "sometimes" } ]
                    """,
                backends: #"{"ok": {"plugin": "respond"}}"#
            )
        )
        #expect(
            Set(issues.map(\.path)) == [
                "$.routes[0].match.pathPrefix", "$.routes[1].match.path", "$.routes[2].escapedSlashes",
            ]
        )
    }

    @Test("HSTS settings are validated")
    func hsts() async throws {
        let issues = try await configIssues(
            """
            { "listeners": [ { "address": "127.0.0.1", "port": 0, "tls": { "hsts": { "preload": true } } },
                             { "address": "127.0.0.1", "port": 0, "tls": { "hsts": { "maxAgeSeconds": -1 } } } ],
              "routes": [], "backends": {} }
            """
        )
        #expect(Set(issues.map(\.path)) == ["$.listeners[0].tls.hsts", "$.listeners[1].tls.hsts.maxAgeSeconds"])
    }
}
