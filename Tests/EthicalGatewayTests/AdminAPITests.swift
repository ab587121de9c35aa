import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// The admin API in a gateway running in the test process: preconditions, authentication,
/// draining a removed backend, and every answer checked against the OpenAPI document.
@Suite("Admin API", .timeLimit(.minutes(5)))
struct AdminAPITests {
    private func withGateway(
        _ config: String = ReloadConfig.json(),
        files: [String: String] = [:],
        _ body: (LiveGateway, AdminClient) async throws -> Void
    ) async throws {
        try await LiveGateway.with(
            config: config,
            files: ["admin.token": ReloadConfig.adminToken + "\n", "api.key": ReloadConfig.apiKey + "\n"].merging(files)
            { $1 },
            registry: gatewayRegistry
        ) { gateway in
            let port = try #require(gateway.adminPort)
            try await body(gateway, AdminClient(port: port, token: ReloadConfig.adminToken))
        }
    }

    @Test("PUT /config and object changes need If-Match: 428 without, 412 when stale, 200 when current")
    func preconditions() async throws {
        try await self.withGateway { gateway, admin in
            let config = try await admin.request("GET", "/config")
            let etag = try #require(config.header("etag"))
            #expect(etag == "\"\(gateway.server.runtime.source.version)\"")
            let body = config.bodyText.replacingOccurrences(of: #""body": "hello\n""#, with: #""body": "hi\n""#)
            #expect(body != config.bodyText)

            #expect(try await admin.request("PUT", "/config", body: body).status == 428)
            let stale = try await admin.request("PUT", "/config", body: body, headers: ["If-Match": "\"0123\""])
            #expect(stale.status == 412)
            let applied = try await admin.request("PUT", "/config", body: body, headers: ["If-Match": etag])
            #expect(applied.status == 200, "\(applied.bodyText)")
            let changes = try AdminClient.json(applied)["changes"] as? [String: Any]
            #expect((changes?["backends"] as? [String: Any])?["changed"] as? [String] == ["hello"])
            // The old ETag is stale now.
            #expect(
                try await admin.request("PUT", "/config", body: config.bodyText, headers: ["If-Match": etag]).status
                    == 412
            )
            let port = try #require(gateway.currentPort("http"))
            #expect(try await Curl.request("http://127.0.0.1:\(port)/hello").bodyText == "hi\n")

            let object = try await admin.request("GET", "/config/backends/hello", template: "/config/{kind}/{name}")
            let tag = try #require(object.header("etag"))
            let changed = #"{ "plugin": "respond", "config": { "body": "hey\n" } }"#
            let path = "/config/backends/hello"
            #expect(
                try await admin.request("PUT", path, body: changed, template: "/config/{kind}/{name}").status == 428
            )
            #expect(
                try await admin.request(
                    "PUT",
                    path,
                    body: changed,
                    headers: ["If-Match": "\"0\""],
                    template: "/config/{kind}/{name}"
                )
                .status == 412
            )
            // Creating must not claim a version; deleting needs one.
            #expect(
                try await admin.request(
                    "PUT",
                    "/config/backends/new",
                    body: changed,
                    headers: ["If-Match": tag],
                    template: "/config/{kind}/{name}"
                )
                .status == 412
            )
            #expect(
                try await admin.request("DELETE", "/config/routes/hello", template: "/config/{kind}/{name}").status
                    == 428
            )
            let updated = try await admin.request(
                "PUT",
                path,
                body: changed,
                headers: ["If-Match": tag],
                template: "/config/{kind}/{name}"
            )
            #expect(updated.status == 200, "\(updated.bodyText)")
            #expect(try await Curl.request("http://127.0.0.1:\(port)/hello").bodyText == "hey\n")
            #expect(
                try await admin.request("GET", "/config/routes/nope", template: "/config/{kind}/{name}").status == 404
            )
        }
    }

    @Test("concurrent changes are applied one at a time: one winner per If-Match, no creation lost")
    func concurrentChanges() async throws {
        try await self.withGateway { gateway, admin in
            let object = try await admin.request("GET", "/config/backends/hello")
            let tag = try #require(object.header("etag"))
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for number in 0..<4 {
                    group.addTask {
                        try await admin.request(
                            "PUT",
                            "/config/backends/hello",
                            body: #"{ "plugin": "respond", "config": { "body": "v\#(number)\n" } }"#,
                            headers: ["If-Match": tag]
                        ).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.sorted() == [200, 412, 412, 412], "\(statuses)")
            let created = try await withThrowingTaskGroup(of: Int.self) { group in
                for number in 0..<4 {
                    group.addTask {
                        try await admin.request(
                            "PUT",
                            "/config/routes/r\(number)",
                            body: #"{ "match": { "pathPrefix": "/r\#(number)" }, "backend": "hello" }"#,
                            // Four reloads one after the other: a loaded full run once took over 20 s.
                            timeout: 60
                        ).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(created == [201, 201, 201, 201], "\(created)")
            for number in 0..<4 {
                #expect(try await admin.request("GET", "/config/routes/r\(number)").status == 200)
            }
            let saved = try String(
                contentsOf: gateway.directory.url.appendingPathComponent("gateway.json"),
                encoding: .utf8
            )
            #expect((0..<4).allSatisfy { saved.contains(#""/r\#($0)""#) }, "\(saved)")
        }
    }

    @Test("a change that would remove the admin API through the admin API is refused")
    func keepsItself() async throws {
        try await self.withGateway { gateway, admin in
            let config = try await admin.request("GET", "/config")
            let withoutAdmin = config.bodyText.replacingOccurrences(
                of: #""admin": { "port": 0, "tokenFile": "admin.token" },"#,
                with: ""
            )
            #expect(withoutAdmin != config.bodyText)
            let refused = try await admin.request(
                "PUT",
                "/config",
                body: withoutAdmin,
                headers: ["If-Match": try #require(config.header("etag"))]
            )
            #expect(refused.status == 422)
            #expect(refused.bodyText.contains("$.admin"), "\(refused.bodyText)")
            #expect(gateway.server.runtime.configuration.admin != nil)
        }
    }

    @Test("without the admin token a body is refused past 1 MiB, before authentication, and the connection closes")
    func unauthenticatedBodyLimit() async throws {
        try await self.withGateway { _, admin in
            let scratch = try TemporaryDirectory()
            defer { scratch.remove() }
            let big = scratch.url.appendingPathComponent("big.json")
            try Data(repeating: UInt8(ascii: " "), count: 2 * 1024 * 1024).write(to: big)
            let output = try await ProcessRunner.run(
                "curl",
                [
                    "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "--data-binary", "@\(big.path)",
                    "http://127.0.0.1:\(admin.port)/config",
                ]
            )
            #expect(output.standardOutput == "413", "\(output.standardOutput) \(output.standardError)")
            // With the token the same body is read (and refused as a configuration, not by size).
            let withToken = try await ProcessRunner.run(
                "curl",
                [
                    "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--data-binary", "@\(big.path)",
                    "-H", "Authorization: Bearer \(ReloadConfig.adminToken)",
                    "http://127.0.0.1:\(admin.port)/config/validate",
                ]
            )
            #expect(withToken.standardOutput == "200", "\(withToken.standardOutput)")
        }
    }

    @Test("a request in flight to a backend that a change removes finishes; new requests no longer reach it")
    func removedBackendDrains() async throws {
        let upstream = try await TestUpstream(name: "slow") { _ in
            .delayed(seconds: 2, .text(status: 200, headers: [], body: "slow answer"))
        }
        let config = ReloadConfig.json(
            extraRoutes: #", { "name": "slow", "match": { "pathPrefix": "/slow" }, "backend": "slow" }"#,
            extraBackends:
                #", "slow": { "plugin": "http-proxy", "config": { "upstreams": [ { "url": "http://127.0.0.1:\#(upstream.port)" } ] } }"#
        )
        try await self.withGateway(config) { gateway, admin in
            let port = try #require(gateway.currentPort("http"))
            let inFlight = Task { try await Curl.request("http://127.0.0.1:\(port)/slow/x") }
            try await waitUntil("the upstream has the request", seconds: 20) { !upstream.requests.isEmpty }
            let route = try await admin.request("GET", "/config/routes/slow", template: "/config/{kind}/{name}")
            let removedRoute = try await admin.request(
                "DELETE",
                "/config/routes/slow",
                headers: ["If-Match": try #require(route.header("etag"))],
                template: "/config/{kind}/{name}"
            )
            #expect(removedRoute.status == 200, "\(removedRoute.bodyText)")
            let removedBackend = try await admin.request(
                "DELETE",
                "/config/backends/slow",
                headers: ["If-Match": "*"],
                template: "/config/{kind}/{name}"
            )
            #expect(removedBackend.status == 200, "\(removedBackend.bodyText)")
            #expect(try await Curl.request("http://127.0.0.1:\(port)/slow/y").status == 404)
            let finished = try await inFlight.value
            #expect(finished.status == 200)
            #expect(finished.bodyText == "slow answer")
        }
        await upstream.stop()
    }

    @Test("the admin API refuses requests without the token, with a wrong one, and JWTs without the admin scope")
    func authentication() async throws {
        let config = ReloadConfig.json().replacingOccurrences(
            of: #""admin": { "port": 0, "tokenFile": "admin.token" },"#,
            with:
                #""admin": { "port": 0, "tokenFile": "admin.token", "issuers": ["tests"] }, "issuers": { "tests": \#(RelayTokens.issuerJSON) },"#
        )
        #expect(config.contains(#""issuers": ["tests"]"#))
        try await self.withGateway(config) { _, admin in
            for (method, path) in [
                ("GET", "/config"), ("PUT", "/config"), ("POST", "/config/validate"), ("POST", "/reload"),
                ("GET", "/openapi.json"), ("GET", "/config/routes/hello"), ("DELETE", "/config/backends/hello"),
            ] {
                let template = path.hasPrefix("/config/") && path != "/config/validate" ? "/config/{kind}/{name}" : path
                let anonymous = try await admin.request(method, path, body: "{}", token: .some(nil), template: template)
                #expect(anonymous.status == 401, "\(method) \(path)")
                #expect(anonymous.header("www-authenticate")?.hasPrefix("Bearer") == true)
                let wrong = try await admin.request(
                    method,
                    path,
                    body: "{}",
                    token: "not-the-admin-token-000",
                    template: template
                )
                #expect(wrong.status == 401, "\(method) \(path)")
            }
            // Two Authorization fields, the admin token in one of them: refused (which counts
            // would be a guess).
            for order in [["not-the-token-0000000", ReloadConfig.adminToken], [ReloadConfig.adminToken, "x"]] {
                let raw = try RawConnection(port: admin.port)
                #expect(
                    raw.send(
                        "GET /config HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer \(order[0])\r\n"
                            + "Authorization: Bearer \(order[1])\r\nConnection: close\r\n\r\n"
                    )
                )
                let answer = await raw.readUntilClosed(timeout: 20).text
                #expect(answer.hasPrefix("HTTP/1.1 401"), "\(order): \(answer.prefix(80))")
            }
            let scoped = try RelayTokens.mint("operator", scopes: ["gateway:admin"])
            #expect(try await admin.request("GET", "/config", token: scoped).status == 200)
            let unscoped = try RelayTokens.mint("visitor", scopes: ["relay:publish"])
            let forbidden = try await admin.request("GET", "/config", token: unscoped)
            #expect(forbidden.status == 403)
            #expect(forbidden.header("www-authenticate")?.contains("insufficient_scope") == true)
            // The probes stay open for orchestrators.
            #expect(try await admin.request("GET", "/healthz", token: .some(nil)).status == 200)
            #expect(try await admin.request("GET", "/readyz", token: .some(nil)).status == 200)
        }
    }

    @Test("an admin API on a public address without authentication is refused at start and by validate")
    func refusesPublicWithoutAuthentication() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let config = ReloadConfig.json().replacingOccurrences(
            of: #""admin": { "port": 0, "tokenFile": "admin.token" }"#,
            with: #""admin": { "address": "0.0.0.0", "port": 0 }"#
        )
        let file = try ReloadConfig.write(config, in: directory)
        for arguments in [["validate", file.path], ["run", "--config", file.path]] {
            let output = try await GatewayProcess.run(arguments)
            #expect(output.exitCode == 1, "\(arguments)")
            #expect(
                output.standardError.contains("$.admin: the admin API would listen on 0.0.0.0"),
                "\(output.standardError)"
            )
        }
    }

    @Test("without tokenFile or issuers the gateway creates a token in the state folder and requires it")
    func generatedToken() async throws {
        let config = ReloadConfig.json().replacingOccurrences(
            of: #""admin": { "port": 0, "tokenFile": "admin.token" }"#,
            with: #""admin": { "port": 0 }"#
        )
        try await LiveGateway.with(config: config, files: ["api.key": ReloadConfig.apiKey], registry: gatewayRegistry) {
            gateway in
            let tokenFile = gateway.directory.url.appendingPathComponent("state/admin-token")
            let token = try String(contentsOf: tokenFile, encoding: .utf8).trimmingCharacters(
                in: .whitespacesAndNewlines
            )
            #expect(token.count >= 40)
            let permissions =
                try FileManager.default.attributesOfItem(atPath: tokenFile.path)[.posixPermissions] as? Int
            #expect(permissions == 0o600)
            let admin = AdminClient(port: try #require(gateway.adminPort), token: token)
            #expect(try await admin.request("GET", "/config").status == 200)
            #expect(try await admin.request("GET", "/config", token: .some(nil)).status == 401)
        }
    }

    @Test("every admin answer matches the OpenAPI document, which the API serves as checked in")
    func answersMatchOpenAPI() async throws {
        let document = try String(
            contentsOf: repositoryRoot.appendingPathComponent("docs/admin-openapi.json"),
            encoding: .utf8
        )
        try await self.withGateway { _, admin in
            let served = try await admin.request("GET", "/openapi.json")
            #expect(
                served.bodyText == document,
                "run scripts/embed-admin-assets.sh after editing docs/admin-openapi.json"
            )
            // Every endpoint and answer this suite does not already make.
            try await admin.request("GET", "/healthz")
            try await admin.request("GET", "/readyz")
            let config = try await admin.request("GET", "/config")
            let valid = try await admin.request("POST", "/config/validate", body: config.bodyText)
            #expect((try AdminClient.json(valid))["valid"] as? Bool == true)
            let invalid = try await admin.request("POST", "/config/validate", body: #"{ "listeners": [] }"#)
            #expect((try AdminClient.json(invalid))["valid"] as? Bool == false)
            #expect(try await admin.request("POST", "/reload").status == 200)
            #expect(try await admin.request("POST", "/config").status == 405)
            #expect(try await admin.request("GET", "/nowhere").status == 404)
        }
        // The answers of every AdminClient in this process so far (this suite and the reload tests
        // that ran before it), and at least those just made.
        let exchanges = AdminClient.recorded.withLockedValue { $0 }
        let records = exchanges.map { exchange -> [String: Any] in
            [
                "method": exchange.method, "path": exchange.template, "status": exchange.status,
                "contentType": exchange.contentType ?? "", "body": exchange.body,
            ]
        }
        let input = try JSONSerialization.data(withJSONObject: records)
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let recordsFile = scratch.url.appendingPathComponent("records.json")
        try input.write(to: recordsFile)
        let output = try await ProcessRunner.run(
            "python3",
            [
                repositoryRoot.appendingPathComponent("Tests/EthicalGatewayTests/Fixtures/openapi_check.py").path,
                repositoryRoot.appendingPathComponent("docs/admin-openapi.json").path, recordsFile.path,
            ],
            timeout: 60
        )
        #expect(output.exitCode == 0, "\(output.standardOutput)\(output.standardError)")
        #expect(output.standardOutput.contains("checked \(exchanges.count) answers"), "\(output.standardOutput)")
    }
}
