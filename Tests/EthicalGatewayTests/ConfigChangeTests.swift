import EthicalGatewayTesting
import Foundation
import Testing

@testable import EthicalGateway

/// The pieces of a configuration change: the diff, one-object edits, entity tags and the file
/// text the admin API writes; and listeners added and removed by a reload.
@Suite("Configuration changes")
struct ConfigChangeTests {
    static func document(_ text: String) throws -> JSONValue { try JSONValue.parse(Data(text.utf8)) }

    @Test("the diff names routes, listeners, backends, filters, issuers and settings added, removed and changed")
    func diff() throws {
        let old = try Self.document(
            """
            { "limits": { "maxBodyBytes": 10 }, "listeners": [ { "address": "127.0.0.1", "port": 80 } ],
              "routes": [ { "name": "a", "backend": "x" }, { "name": "b", "backend": "x" } ],
              "backends": { "x": { "plugin": "respond" }, "y": { "plugin": "respond" } } }
            """
        )
        let new = try Self.document(
            """
            { "limits": { "maxBodyBytes": 20 }, "listeners": [ { "address": "127.0.0.1", "port": 80 }, { "name": "tls", "port": 443 } ],
              "routes": [ { "backend": "z", "name": "a" }, { "name": "c", "backend": "x" } ],
              "backends": { "x": { "plugin": "respond" }, "z": { "plugin": "static" } }, "watchConfig": true }
            """
        )
        let diff = ConfigDiff(from: old, to: new)
        #expect(diff.routes == .init(added: ["c"], removed: ["b"], changed: ["a"]))
        #expect(diff.backends == .init(added: ["z"], removed: ["y"], changed: []))
        #expect(diff.listeners == .init(added: ["tls"], removed: [], changed: []))
        #expect(diff.settings == ["limits", "watchConfig"])
        #expect(diff.summary == "routes +1 ~1 -1, backends +1 ~0 -1, listeners +1 ~0 -0, settings limits watchConfig")
        #expect(ConfigDiff(from: old, to: old).isEmpty)
    }

    @Test("written config text has sorted keys and two-space indentation; entity tags ignore formatting")
    func encoding() throws {
        let value = try Self.document(#"{ "b": [1, 2.5, "x\n"], "a": { }, "c": [], "d": null, "e": true }"#)
        let text = String(decoding: value.encoded(pretty: true), as: UTF8.self)
        #expect(
            text == """
                {
                  "a": {},
                  "b": [
                    1,
                    2.5,
                    "x\\n"
                  ],
                  "c": [],
                  "d": null,
                  "e": true
                }

                """
        )
        #expect(try Self.document(text) == value)
        let reordered = try Self.document(#"{"e":true,"d":null,"c":[],"a":{},"b":[1,2.5,"x\n"]}"#)
        #expect(reordered.entityTag == value.entityTag)
        #expect(try Self.document(#"{"e":false}"#).entityTag != value.entityTag)
    }

    @Test("If-Match compares strongly, accepts * and lists")
    func ifMatch() {
        #expect(ConfigController.matches("\"abc\"", tag: "\"abc\""))
        #expect(ConfigController.matches("\"x\", \"abc\"", tag: "\"abc\""))
        #expect(ConfigController.matches("*", tag: "\"abc\""))
        #expect(!ConfigController.matches("W/\"abc\"", tag: "\"abc\""))
        #expect(!ConfigController.matches("abc", tag: "\"abc\""))
    }

    @Test("a reload binds a new listener and closes a removed one; the kept one keeps its socket")
    func listenersByDiff() async throws {
        try await LiveGateway.with(
            config: ReloadConfig.json(),
            files: ["admin.token": ReloadConfig.adminToken, "api.key": ReloadConfig.apiKey],
            registry: gatewayRegistry
        ) { gateway in
            let port = try #require(gateway.currentPort("http"))
            // A keep-alive connection that served a request before the reload (an idle one that
            // never sent a request would meet the header read timeout on a loaded machine).
            let kept = try RawConnection(port: port)
            #expect(kept.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"))
            #expect(await kept.read(until: "hello\n", timeout: 30).hasPrefix("HTTP/1.1 200"))
            let twoListeners = ReloadConfig.json().replacingOccurrences(
                of: #"{ "name": "http", "address": "127.0.0.1", "port": 0 } ]"#,
                with:
                    #"{ "name": "http", "address": "127.0.0.1", "port": 0 }, { "name": "second", "address": "127.0.0.1", "port": 0 } ]"#
            )
            #expect(twoListeners != ReloadConfig.json())
            let added = await gateway.controller.replace(
                with: Data(twoListeners.utf8),
                ifMatch: "\"\(gateway.server.runtime.source.version)\""
            )
            #expect((try? added.get())?.diff.listeners.added == ["second"])
            #expect(gateway.currentPort("http") == port)
            let second = try #require(gateway.currentPort("second"))
            #expect(try await Curl.request("http://127.0.0.1:\(second)/hello").status == 200)
            let secondKept = try RawConnection(port: second)
            #expect(secondKept.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"))
            #expect(await secondKept.read(until: "hello\n", timeout: 30).hasPrefix("HTTP/1.1 200"))
            // A connection accepted before the reload still serves.
            #expect(kept.send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"))
            let answer = await kept.read(until: "hello\n", timeout: 30)
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")

            let removed = await gateway.controller.replace(
                with: Data(ReloadConfig.json().utf8),
                ifMatch: "\"\(gateway.server.runtime.source.version)\""
            )
            #expect((try? removed.get())?.diff.listeners.removed == ["second"])
            #expect(gateway.currentPort("second") == nil)
            // A keep-alive connection of the removed listener is closed (it was idle).
            let onRemoved = await secondKept.readUntilClosed(timeout: 30)
            #expect(onRemoved.closed, "\(onRemoved.text)")
            await #expect(throws: CurlError.self) {
                try await Curl.request("http://127.0.0.1:\(second)/hello", timeout: 5)
            }
            #expect(try await Curl.request("http://127.0.0.1:\(port)/hello").status == 200)
        }
    }

    @Test("an accepted change follows a symlinked config file: the target is replaced, the link stays")
    func symlinkedConfig() async throws {
        let directory = try TemporaryDirectory()
        let real = try directory.write(ReloadConfig.json(), to: "real/gateway.json")
        _ = try directory.write(ReloadConfig.adminToken, to: "admin.token")
        _ = try directory.write(ReloadConfig.apiKey, to: "api.key")
        _ = try directory.write(ReloadConfig.adminToken, to: "real/admin.token")
        _ = try directory.write(ReloadConfig.apiKey, to: "real/api.key")
        let link = directory.url.appendingPathComponent("gateway.json")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: real)
        let gateway = try await LiveGateway.start(configFile: link, directory: directory, registry: gatewayRegistry)
        let outcome = await gateway.controller.put(
            .object(["plugin": .string("respond")]),
            kind: .backends,
            name: "extra",
            ifMatch: nil
        )
        #expect((try? outcome.get()) != nil)
        let attributes = try FileManager.default.attributesOfItem(atPath: link.path)
        #expect(attributes[.type] as? FileAttributeType == .typeSymbolicLink)
        #expect(try String(contentsOf: real, encoding: .utf8).contains(#""extra""#))
        try await gateway.shutdown()
        directory.remove()
    }

    @Test("admin settings are checked: address, port, scope, issuers that exist, a port no listener uses")
    func adminSettings() async throws {
        for (admin, path) in [
            (#"{ "address": "localhost" }"#, "$.admin.address"), (#"{ "port": 70000 }"#, "$.admin.port"),
            (#"{ "scope": "a b" }"#, "$.admin.scope"), (#"{ "tokenFile": "short.token" }"#, "$.admin.tokenFile"),
        ] {
            let issues = try await configIssues(
                #"{ "listeners": [ { "address": "127.0.0.1", "port": 8080 } ], "admin": \#(admin) }"#,
                files: ["short.token": "too short\n"]
            )
            #expect(issues.map(\.path) == [path], "\(issues)")
        }
        let names = try await configIssues(
            """
            { "listeners": [ { "address": "127.0.0.1", "port": 8080 } ],
              "routes": [ { "name": "a", "backend": "x" }, { "name": "a", "backend": "x" }, { "name": "..", "backend": "x" } ],
              "backends": { "x": { "plugin": "respond" }, "a\\nb": { "plugin": "respond" }, "a/b": { "plugin": "respond" } } }
            """
        )
        #expect(
            names.contains { $0.path == "$.routes[1].name" && $0.message.contains("already used by $.routes[0]") },
            "\(names)"
        )
        #expect(names.contains { $0.path == "$.routes[2].name" }, "\(names)")
        #expect(names.filter { $0.path == "$.backends" }.count == 2, "\(names)")
        let clash = try await configIssues(
            """
            { "listeners": [ { "address": "127.0.0.1", "port": 8080 } ], "issuers": {},
              "admin": { "port": 8080, "issuers": ["ghost"] } }
            """
        )
        #expect(clash.map(\.path).contains("$.admin.port"), "\(clash)")
        #expect(clash.map(\.path).contains("$.admin.issuers[0]"), "\(clash)")
    }
}
