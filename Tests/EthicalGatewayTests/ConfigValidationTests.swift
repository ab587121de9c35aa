import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

@Suite("Configuration: strict decoding, every error with its JSON path")
struct ConfigValidationTests {
    @Test("a minimal configuration is valid")
    func minimalIsValid() async throws {
        let issues = try await configIssues(
            plainConfig(routes: #"[{"backend": "ok"}]"#, backends: #"{"ok": {"plugin": "respond"}}"#)
        )
        #expect(issues.isEmpty)
    }

    @Test("invalid JSON names the position of the syntax error")
    func syntaxError() async throws {
        let issues = try await configIssues(#"{ "listeners": [ }"#)
        #expect(issues.count == 1)
        #expect(issues[0].path == "$")
        #expect(issues[0].message.contains("not valid JSON"))
    }

    @Test("unknown keys are errors that list the accepted keys")
    func unknownKeys() async throws {
        let issues = try await configIssues(
            """
            { "listeners": [ { "address": "127.0.0.1", "port": 0, "prot": 1 } ],
              "routes": [ { "backend": "ok", "match": { "pathprefix": "/x" } } ],
              "backends": { "ok": { "plugin": "respond", "config": { "stauts": 200 } } },
              "extra": true }
            """
        )
        let paths = Set(issues.map(\.path))
        #expect(
            paths == ["$.extra", "$.listeners[0].prot", "$.routes[0].match.pathprefix", "$.backends.ok.config.stauts"]
        )
        let routeIssue = try #require(issues.first { $0.path == "$.routes[0].match.pathprefix" })
        #expect(routeIssue.message.contains("pathPrefix"))
    }

    @Test("wrong types say what was expected and what was found")
    func wrongTypes() async throws {
        let issues = try await configIssues(
            """
            { "listeners": [ { "address": "127.0.0.1", "port": "eighty" } ],
              "routes": [ { "backend": 7 } ],
              "backends": { "ok": { "plugin": "respond" } } }
            """
        )
        let port = try #require(issues.first { $0.path == "$.listeners[0].port" })
        #expect(port.message.contains("expected an integer") && port.message.contains("\"eighty\""))
        let backend = try #require(issues.first { $0.path == "$.routes[0].backend" })
        #expect(backend.message.contains("expected a string"))
    }

    @Test("every broken listener, route and backend is reported in one run")
    func allErrorsAtOnce() async throws {
        let issues = try await configIssues(
            """
            { "listeners": [
                { "name": "a", "address": "127.0.0.1", "port": 70000 },
                { "name": "b", "address": "localhost", "port": 8080 },
                { "name": "c", "address": "127.0.0.1", "port": 9000 },
                { "name": "d", "address": "0.0.0.0", "port": 9000 } ],
              "routes": [
                { "backend": "missing" },
                { "backend": "ok", "match": { "path": "no-slash" } },
                { "backend": "ok", "match": { "path": "/a", "pathPrefix": "/b" } },
                { "backend": "ok", "filters": ["nope"] },
                { "backend": "ok", "match": { "methods": ["get"] } } ],
              "backends": {
                "ok": { "plugin": "respond" },
                "bad-status": { "plugin": "respond", "config": { "status": 700 } },
                "unknown": { "plugin": "teleport" } } }
            """
        )
        let paths = issues.map(\.path)
        #expect(paths.contains("$.listeners[0].port"))
        #expect(paths.contains("$.listeners[1].address"))
        #expect(paths.contains("$.listeners[3].port"))
        #expect(paths.contains("$.routes[0].backend"))
        #expect(paths.contains("$.routes[1].match.path"))
        #expect(paths.contains("$.routes[2].match.pathPrefix"))
        #expect(paths.contains("$.routes[3].filters[0]"))
        #expect(paths.contains("$.routes[4].match.methods[0]"))
        #expect(paths.contains("$.backends.bad-status.config.status"))
        #expect(paths.contains("$.backends.unknown.plugin"))
        let conflict = try #require(issues.first { $0.path == "$.listeners[3].port" })
        #expect(conflict.message.contains("\"c\""))
        let unknown = try #require(issues.first { $0.path == "$.backends.unknown.plugin" })
        #expect(unknown.message.contains("available: fluxer-relay, http-proxy, redirect, respond, static"))
    }

    @Test("a route naming a backend that does not exist lists the declared ones")
    func danglingBackend() async throws {
        let issues = try await configIssues(
            plainConfig(routes: #"[{"backend": "web"}]"#, backends: #"{"api": {"plugin": "respond"}}"#)
        )
        #expect(
            issues == [
                ConfigIssue(path: "$.routes[0].backend", message: "no backend named \"web\" (declared backends: api)")
            ]
        )
    }

    @Test("two listeners with the same name are an error")
    func duplicateListenerNames() async throws {
        let issues = try await configIssues(
            """
            { "listeners": [ { "name": "x", "address": "127.0.0.1", "port": 0 }, { "name": "x", "address": "127.0.0.1", "port": 0 } ],
              "routes": [], "backends": {} }
            """
        )
        #expect(issues.map(\.path) == ["$.listeners[1].name"])
    }

    @Test("routes that tie on precedence are an error naming both")
    func ties() async throws {
        let issues = try await configIssues(
            plainConfig(
                routes: """
                    [ { "name": "one", "match": { "pathPrefix": "/api" }, "backend": "ok" },
                      { "name": "two", "match": { "pathPrefix": "/api/" }, "backend": "ok" },
                      { "name": "three", "match": { "pathPrefix": "/api", "methods": ["GET"] }, "backend": "ok" },
                      { "name": "four", "match": { "pathPrefix": "/api", "methods": ["POST"] }, "backend": "ok" },
                      { "name": "five", "match": { "pathPrefix": "/api", "methods": ["POST", "PUT"] }, "backend": "ok" } ]
                    """,
                backends: #"{"ok": {"plugin": "respond"}}"#
            )
        )
        #expect(issues.map(\.path) == ["$.routes[1]", "$.routes[4]"])
        #expect(issues[0].message.contains("\"two\" ties with route \"one\""))
    }

    @Test("unreadable and mismatched certificates are errors at their JSON path")
    func certificateErrors() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let first = try TestCertificate.make(commonName: "a.test", dnsNames: ["a.test"], in: directory.url)
        let second = try TestCertificate.make(commonName: "b.test", dnsNames: ["b.test"], in: directory.url)
        let issues = try await configIssues(
            """
            { "listeners": [ { "address": "127.0.0.1", "port": 0, "tls": { "certificates": [
                { "certificateFile": "/nonexistent/cert.pem", "keyFile": "\(first.keyFile.path)" },
                { "certificateFile": "\(first.certificateFile.path)", "keyFile": "\(second.keyFile.path)" },
                { "certificateFile": "\(first.keyFile.path)", "keyFile": "\(first.keyFile.path)" } ] } } ],
              "routes": [], "backends": {} }
            """
        )
        #expect(
            issues.map(\.path) == [
                "$.listeners[0].tls.certificates[0].certificateFile",
                "$.listeners[0].tls.certificates[1].keyFile",
                "$.listeners[0].tls.certificates[2].certificateFile",
            ]
        )
        #expect(issues[0].message.contains("does not exist"))
        #expect(issues[1].message.contains("does not match"))
    }

    @Test("plugin configurations are validated by their plugins")
    func pluginErrors() async throws {
        let issues = try await configIssues(
            plainConfig(
                routes: "[]",
                backends: """
                    { "files": { "plugin": "static", "config": { "root": "missing-folder" } },
                      "files2": { "plugin": "static", "config": {} },
                      "go": { "plugin": "redirect", "config": { "location": "ftp://x", "status": 302 } },
                      "go2": { "plugin": "redirect", "config": { "location": "https://x.test", "status": 200 } } }
                    """
            )
        )
        #expect(
            Set(issues.map(\.path)) == [
                "$.backends.files.config.root", "$.backends.files2.config", "$.backends.go.config.location",
                "$.backends.go2.config.status",
            ]
        )
        let missingRoot = try #require(issues.first { $0.path == "$.backends.files2.config" })
        #expect(missingRoot.message == "missing required key \"root\"")
    }

    @Test("enumerations list their accepted values")
    func enumerations() async throws {
        let issues = try await configIssues(
            plainConfig(routes: "[]", backends: "{}", extra: #""logLevel": "loud""#)
        )
        #expect(
            issues == [
                ConfigIssue(
                    path: "$.logLevel",
                    message:
                        "expected one of \"trace\", \"debug\", \"info\", \"notice\", \"warning\", \"error\", \"critical\", found \"loud\""
                )
            ]
        )
    }
}
