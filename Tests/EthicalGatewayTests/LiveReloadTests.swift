import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// Reloads of a running gateway (the real binary): a config change under load fails no request,
/// keeps relay WebSockets, and a broken config changes nothing, by every path.
@Suite("Live configuration reload", .timeLimit(.minutes(5)))
struct LiveReloadTests {
    static let loadScript = repositoryRoot.appendingPathComponent("Tests/EthicalGatewayTests/Fixtures/reload_load.py")

    /// A gateway process on `ReloadConfig`, with a subscribed relay WebSocket and a load running
    /// against `/hello`; `change` changes the config; afterwards `/api` must answer, the load
    /// must have lost nothing, and the WebSocket must still receive publications.
    private func reloadUnderLoad(_ change: (GatewayProcess, URL, AdminClient) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let configFile = try ReloadConfig.write(ReloadConfig.json(), in: directory)
        let gateway = try await GatewayProcess(arguments: ["run", "--config", configFile.path], expectedListeners: 1)
        defer { _ = gateway.stop() }
        let port = try #require(gateway.listeningPorts["http"], "\(gateway.log)")
        let admin = AdminClient(port: try await gateway.waitForAdminPort(), token: ReloadConfig.adminToken)

        let subscriber = try await RelayTestClient.connect(port: port, path: "/relay/connection/websocket", tls: false)
        defer { subscriber.close() }
        #expect(result(try await subscriber.call("connect"), "connect") != nil)
        #expect(result(try await subscriber.call("subscribe", ["channel": "news"]), "subscribe") != nil)

        let started = directory.url.appendingPathComponent("load-started")
        let stop = directory.url.appendingPathComponent("load-stop")
        let load = Task {
            try await ProcessRunner.run(
                "python3",
                [
                    Self.loadScript.path, "http://127.0.0.1:\(port)/hello", started.path, stop.path, "--max-seconds",
                    "90",
                ],
                timeout: 120
            )
        }
        defer { FileManager.default.createFile(atPath: stop.path, contents: nil) }
        try await waitUntil("the load started", seconds: 30) { FileManager.default.fileExists(atPath: started.path) }
        #expect(try await Curl.request("http://127.0.0.1:\(port)/api/x").status == 404)

        try await change(gateway, configFile, admin)

        try await waitUntil("the new route answers", seconds: 30) {
            (try? await Curl.request("http://127.0.0.1:\(port)/api/x"))?.status == 200
        }
        #expect(try await Curl.request("http://127.0.0.1:\(port)/api/x").bodyText == "api\n")
        FileManager.default.createFile(atPath: stop.path, contents: nil)
        let output = try await load.value
        let totals = try #require(
            try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any],
            "\(output.standardError)"
        )
        #expect(totals["failed"] as? Int == 0, "\(totals)")
        #expect((totals["requests"] as? Int ?? 0) > 0, "\(totals)")

        // The WebSocket from before the reload still receives publications.
        let published = try await Curl.request(
            "http://127.0.0.1:\(port)/relay/api/publish",
            [
                "-X", "POST", "-H", "X-API-Key: \(ReloadConfig.apiKey)", "-H", "Content-Type: application/json",
                "--data-raw", #"{"channel":"news","data":{"after":"reload"}}"#,
            ]
        )
        #expect(published.status == 200, "\(published.bodyText)")
        let push = try await subscriber.nextPush(timeout: .seconds(20))
        let publication = (push["push"] as? [String: Any])?["pub"] as? [String: Any]
        #expect((publication?["data"] as? [String: Any])?["after"] as? String == "reload", "\(push)")
        #expect(gateway.log.contains("configuration applied"), "\(gateway.log)")
    }

    @Test("SIGHUP with a config adding a route and a backend, under load and with a relay WebSocket subscribed")
    func sighupUnderLoad() async throws {
        try await self.reloadUnderLoad { gateway, configFile, _ in
            try ReloadConfig.json(extraRoutes: ReloadConfig.apiRoute, extraBackends: ReloadConfig.apiBackend)
                .write(to: configFile, atomically: true, encoding: .utf8)
            gateway.signal(SIGHUP)
        }
    }

    @Test("PUT /config/backends and /config/routes add a route and a backend, under load and with a WebSocket")
    func adminPutUnderLoad() async throws {
        try await self.reloadUnderLoad { _, configFile, admin in
            let backend = try await admin.request(
                "PUT",
                "/config/backends/api",
                body: #"{ "plugin": "respond", "config": { "status": 200, "body": "api\n" } }"#,
                template: "/config/{kind}/{name}"
            )
            #expect(backend.status == 201, "\(backend.bodyText)")
            let route = try await admin.request(
                "PUT",
                "/config/routes/api",
                body: #"{ "match": { "pathPrefix": "/api" }, "backend": "api" }"#,
                template: "/config/{kind}/{name}"
            )
            #expect(route.status == 201, "\(route.bodyText)")
            let changes = try AdminClient.json(route)["changes"] as? [String: Any]
            #expect((changes?["routes"] as? [String: Any])?["added"] as? [String] == ["api"])
            // Persisted: the file now declares both.
            let saved = try String(contentsOf: configFile, encoding: .utf8)
            #expect(saved.contains(#""api": {"#) && saved.contains(#""pathPrefix": "/api""#), "\(saved)")
        }
    }

    @Test("a broken config through SIGHUP, POST /reload, PUT /config and PUT/DELETE of objects changes nothing")
    func brokenConfigChangesNothing() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let original = ReloadConfig.json()
        let configFile = try ReloadConfig.write(original, in: directory)
        let gateway = try await GatewayProcess(arguments: ["run", "--config", configFile.path], expectedListeners: 1)
        defer { _ = gateway.stop() }
        let port = try #require(gateway.listeningPorts["http"], "\(gateway.log)")
        let admin = AdminClient(port: try await gateway.waitForAdminPort(), token: ReloadConfig.adminToken)
        let before = try await admin.request("GET", "/config")
        let version = try #require(before.header("etag"))

        // SIGHUP with a file naming a backend that does not exist.
        let broken = ReloadConfig.json(
            extraRoutes: #", { "name": "api", "match": { "pathPrefix": "/api" }, "backend": "missing" }"#
        )
        try broken.write(to: configFile, atomically: true, encoding: .utf8)
        gateway.signal(SIGHUP)
        try await waitUntil("the refusal is logged", seconds: 20) {
            gateway.log.contains("configuration change refused")
        }
        #expect(gateway.log.contains(#"$.routes[2].backend: no backend named "missing""#), "\(gateway.log)")

        // POST /reload reads the same broken file.
        let reload = try await admin.request("POST", "/reload")
        #expect(reload.status == 422)
        #expect(reload.header("content-type") == "application/problem+json")
        let errors = try AdminClient.json(reload)["errors"] as? [[String: Any]]
        #expect(errors?.first?["path"] as? String == "$.routes[2].backend", "\(reload.bodyText)")
        try original.write(to: configFile, atomically: true, encoding: .utf8)

        // PUT /config with an invalid document, with the right If-Match.
        let replaced = try await admin.request(
            "PUT",
            "/config",
            body: #"{ "listeners": [ { "name": "http", "address": "localhost", "port": 0 } ] }"#,
            headers: ["If-Match": version]
        )
        #expect(replaced.status == 422, "\(replaced.bodyText)")
        #expect(replaced.bodyText.contains("$.listeners[0].address"), "\(replaced.bodyText)")
        let syntax = try await admin.request("PUT", "/config", body: "{ not json", headers: ["If-Match": version])
        #expect(syntax.status == 422, "\(syntax.bodyText)")

        // One object: a route to a missing backend; deleting a backend a route uses; a bad plugin config.
        let route = try await admin.request(
            "PUT",
            "/config/routes/api",
            body: #"{ "match": { "pathPrefix": "/api" }, "backend": "missing" }"#,
            template: "/config/{kind}/{name}"
        )
        #expect(route.status == 422)
        #expect(route.bodyText.contains("$.routes[2].backend"), "\(route.bodyText)")
        let delete = try await admin.request(
            "DELETE",
            "/config/backends/hello",
            headers: ["If-Match": "*"],
            template: "/config/{kind}/{name}"
        )
        #expect(delete.status == 422)
        #expect(delete.bodyText.contains("$.routes[0].backend"), "\(delete.bodyText)")
        let plugin = try await admin.request(
            "PUT",
            "/config/backends/other",
            body: #"{ "plugin": "respond", "config": { "status": "two hundred" } }"#,
            template: "/config/{kind}/{name}"
        )
        #expect(plugin.status == 422)
        #expect(plugin.bodyText.contains("$.backends.other.config.status"), "\(plugin.bodyText)")

        // Nothing changed: the same version in service and on disk, the old routes answer.
        #expect(try await admin.request("GET", "/config").header("etag") == version)
        #expect(try String(contentsOf: configFile, encoding: .utf8) == original)
        #expect(try await Curl.request("http://127.0.0.1:\(port)/hello").status == 200)
        #expect(try await Curl.request("http://127.0.0.1:\(port)/api/x").status == 404)
    }

    @Test("with watchConfig, a changed file is reloaded; a broken one is refused and the running config stays")
    func watchConfig() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let watched = { (config: String) in
            config.replacingOccurrences(of: #""admin":"#, with: #""watchConfig": true, "admin":"#)
        }
        let configFile = try ReloadConfig.write(watched(ReloadConfig.json()), in: directory)
        let gateway = try await GatewayProcess(arguments: ["run", "--config", configFile.path], expectedListeners: 1)
        defer { _ = gateway.stop() }
        let port = try #require(gateway.listeningPorts["http"], "\(gateway.log)")
        try watched(ReloadConfig.json(extraRoutes: ReloadConfig.apiRoute, extraBackends: ReloadConfig.apiBackend))
            .write(to: configFile, atomically: true, encoding: .utf8)
        try await waitUntil("the watcher applied the file", seconds: 30) {
            (try? await Curl.request("http://127.0.0.1:\(port)/api/x"))?.status == 200
        }
        #expect(gateway.log.contains("trigger=file change"), "\(gateway.log)")
        try watched(ReloadConfig.json(extraRoutes: #", { "name": "bad", "backend": "ghost" }"#))
            .write(to: configFile, atomically: true, encoding: .utf8)
        try await waitUntil("the watcher refused the file", seconds: 30) {
            gateway.log.contains("configuration change refused")
        }
        #expect(try await Curl.request("http://127.0.0.1:\(port)/api/x").status == 200)
    }

    @Test("a reload re-reads the files an unchanged declaration names; a replaced relay tells its clients to reconnect")
    func rotatedFiles() async throws {
        try await LiveGateway.with(
            config: ReloadConfig.json(),
            files: ["admin.token": ReloadConfig.adminToken, "api.key": ReloadConfig.apiKey],
            registry: gatewayRegistry
        ) { gateway in
            let port = try #require(gateway.currentPort("http"))
            let subscriber = try await RelayTestClient.connect(
                port: port,
                path: "/relay/connection/websocket",
                tls: false
            )
            defer { subscriber.close() }
            #expect(result(try await subscriber.call("connect"), "connect") != nil)
            #expect(result(try await subscriber.call("subscribe", ["channel": "news"]), "subscribe") != nil)
            let publish = { (key: String) in
                try await Curl.request(
                    "http://127.0.0.1:\(port)/relay/api/publish",
                    ["-X", "POST", "-H", "X-API-Key: \(key)", "--data-raw", #"{"channel":"news","data":{}}"#]
                ).status
            }
            #expect(try await publish(ReloadConfig.apiKey) == 200)
            _ = try await subscriber.nextPush()

            // The JSON is unchanged; only the key file is rotated.
            let rotated = "rotated-relay-api-key-0123456789"
            try (rotated + "\n").write(
                to: gateway.directory.url.appendingPathComponent("api.key"),
                atomically: true,
                encoding: .utf8
            )
            let reloaded = await gateway.controller.reloadFile(trigger: "test")
            #expect((try? reloaded.get()) != nil)
            #expect(try await publish(rotated) == 200)
            #expect(try await publish(ReloadConfig.apiKey) == 401)
            // The relay was re-created: its old clients are told to reconnect (3001, shutdown).
            let closed = try await subscriber.waitForClose(timeout: .seconds(30))
            #expect(closed.code == 3001, "\(closed)")
        }
    }

    @Test("changes made through the admin API survive a restart")
    func changesPersist() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let configFile = try ReloadConfig.write(ReloadConfig.json(), in: directory)
        var version = ""
        do {
            let gateway = try await GatewayProcess(
                arguments: ["run", "--config", configFile.path],
                expectedListeners: 1
            )
            defer { _ = gateway.stop() }
            let admin = AdminClient(port: try await gateway.waitForAdminPort(), token: ReloadConfig.adminToken)
            _ = try await admin.request(
                "PUT",
                "/config/backends/api",
                body: #"{ "plugin": "respond", "config": { "body": "api\n" } }"#
            )
            let route = try await admin.request(
                "PUT",
                "/config/routes/api",
                body: #"{ "match": { "pathPrefix": "/api" }, "backend": "api" }"#
            )
            #expect(route.status == 201, "\(route.bodyText)")
            version = try #require(try await admin.request("GET", "/config").header("etag"))
            #expect(gateway.stop() == 0)
        }
        let restarted = try await GatewayProcess(arguments: ["run", "--config", configFile.path], expectedListeners: 1)
        defer { _ = restarted.stop() }
        let port = try #require(restarted.listeningPorts["http"], "\(restarted.log)")
        #expect(try await Curl.request("http://127.0.0.1:\(port)/api/x").bodyText == "api\n")
        let admin = AdminClient(port: try await restarted.waitForAdminPort(), token: ReloadConfig.adminToken)
        #expect(try await admin.request("GET", "/config").header("etag") == version)
    }
}

/// Polls `condition` until it holds, for at most `seconds`.
func waitUntil(_ what: String, seconds: Double, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw AdminTestError(message: "timed out after \(seconds) s waiting until \(what)")
}
