import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

/// The relay with independent clients (centrifuge-python, cent; `Fixtures/relay_clients.py`)
/// and its HTTP API: the Centrifugo-compatible methods, stats, namespace CRUD that survives a restart.
@Suite("Fluxer Relay: SDK clients and HTTP API", .timeLimit(.minutes(5)))
struct RelayAPITests {
    static let script = repositoryRoot.appendingPathComponent("Tests/EthicalGatewayTests/Fixtures/relay_clients.py")

    /// Runs a scenario of the fixture; returns its JSON result.
    static func scenario(_ name: String, _ arguments: [String]) async throws -> [String: Any] {
        let output = try await ProcessRunner.run("python3", [Self.script.path, name] + arguments, timeout: 60)
        guard output.exitCode == 0,
            let object = try? JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any]
        else {
            throw RelayTestClientError(
                message: "relay_clients.py \(name) failed (\(output.exitCode)): \(output.standardError.suffix(2000))"
            )
        }
        return object
    }

    static func urls(_ gateway: LiveGateway) -> (websocket: String, api: String) {
        let port = gateway.port("https")
        return ("wss://127.0.0.1:\(port)/relay/connection/websocket", "https://127.0.0.1:\(port)/relay/api")
    }

    @Test("centrifuge-python connects, subscribes, publishes, reads presence and history; rpc is not found")
    func pythonRoundTrip() async throws {
        try await RelayGateway.with { gateway in
            let outcome = try await Self.scenario(
                "roundtrip",
                [Self.urls(gateway).websocket, try RelayTokens.mint("alice")]
            )
            let data = try #require(outcome["data"] as? [String: Any])
            #expect(data["text"] as? String == "hello")
            #expect(outcome["offset"] as? Int == 1)
            #expect(outcome["presence_users"] as? [String] == ["alice"])
            #expect(outcome["num_clients"] as? Int == 1)
            #expect(outcome["history_offsets"] as? [Int] == [1])
            #expect(outcome["rpc_error"] as? Int == 104)
        }
    }

    @Test("centrifuge-python recovers what was published while the server had dropped it: no loss, no duplicate")
    func pythonRecovery() async throws {
        try await RelayGateway.with { gateway in
            let urls = Self.urls(gateway)
            let outcome = try await Self.scenario(
                "recovery",
                [urls.websocket, try RelayTokens.mint("rita"), urls.api, RelayGateway.apiKey, "rita"]
            )
            #expect(outcome["received"] as? [Int] == Array(1...8), "\(outcome)")
            #expect(outcome["extra"] as? Int == 0)
            #expect(outcome["first_recoverable"] as? Bool == true)
            #expect(outcome["second_was_recovering"] as? Bool == true)
            #expect(outcome["second_recovered"] as? Bool == true)
        }
    }

    @Test("cent drives the server API: idempotent publish, broadcast, history, presence, channels, info")
    func centServerAPI() async throws {
        try await RelayGateway.with { gateway in
            let (listener, _) = try await RelayGateway.connect(gateway, token: try RelayTokens.mint("lee"))
            _ = try await listener.call("subscribe", ["channel": "chat:api"])
            let outcome = try await Self.scenario("server-api", [Self.urls(gateway).api, RelayGateway.apiKey])
            let first = try #require(outcome["first"] as? [Any])
            #expect(first[0] as? Int == 1)
            #expect("\(first)" == "\(outcome["again"] ?? "")", "an idempotent retry returns the first result")
            #expect(outcome["other_offset"] as? Int == 2)
            let broadcast = try #require(outcome["broadcast"] as? [[Any]])
            #expect(broadcast.count == 3)
            #expect(broadcast[0][1] as? Int == 3)
            #expect(broadcast[2][0] as? Int == 102)
            #expect((outcome["history"] as? [[String: Any]])?.count == 3)
            #expect(outcome["emptied"] as? Int == 0)
            #expect(outcome["presence"] as? Int == 1)
            #expect(outcome["num_clients"] as? Int == 1)
            #expect(outcome["channels"] as? [String] == ["chat:api"])
            #expect(outcome["nodes"] as? Int == 1)
            #expect(outcome["unknown_namespace_code"] as? Int == 102)
            #expect(outcome["wrong_key"] as? String == "CentUnauthorizedError")

            // The listener saw the idempotent publication once.
            var offsets: [Int] = []
            while offsets.count < 3 {
                if let offset = try await listener.nextPublication()["offset"] as? Int { offsets.append(offset) }
            }
            #expect(offsets == [1, 2, 3])
            listener.close()
        }
    }

    @Test("server API: unsubscribe and disconnect reach the user's connections; tokens need the API scope")
    func userControl() async throws {
        try await RelayGateway.with { gateway in
            let (client, _) = try await RelayGateway.connect(gateway, token: try RelayTokens.mint("una"))
            _ = try await client.call("subscribe", ["channel": "chat:u"])
            _ = try await RelayGateway.api(gateway, "unsubscribe", ["user": "una", "channel": "chat:u"])
            var unsubscribe: [String: Any]?
            while unsubscribe == nil {
                unsubscribe = (try await client.nextPush()["push"] as? [String: Any])?["unsubscribe"] as? [String: Any]
            }
            #expect(unsubscribe?["code"] as? Int == 2000)
            _ = try await RelayGateway.api(gateway, "disconnect", ["user": "una"])
            #expect(try await client.waitForClose().code == 3503)

            let api = "https://127.0.0.1:\(gateway.port("https"))/relay/api/info"
            let noScope = try await Curl.request(
                api,
                ["-X", "POST", "-H", "Authorization: Bearer \(try RelayTokens.mint("svc"))", "--data-raw", "{}"]
            )
            #expect(noScope.status == 403)
            #expect(noScope.bodyText.contains("relay:admin"))
            let scoped = try await Curl.request(
                api,
                [
                    "-X", "POST", "-H", "Authorization: Bearer \(try RelayTokens.mint("svc", scopes: ["relay:admin"]))",
                    "--data-raw", "{}",
                ]
            )
            #expect(scoped.status == 200)
            #expect(scoped.bodyText.contains("\"nodes\""))
            let bad = try await RelayGateway.api(gateway, "publish", ["channel": "chat:u"])
            #expect((bad["error"] as? [String: Any])?["message"] as? String == "bad request: data is required")
        }
    }

    @Test("namespaces: create, patch, read, delete over REST, validated with JSON paths, kept across a restart")
    func namespaceCRUD() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write(RelayGateway.apiKey, to: "api.key")
        let file = try directory.write(RelayGateway.config(relay: RelayGateway.namespaces), to: "gateway.json")

        func request(
            _ gateway: LiveGateway,
            _ method: String,
            _ path: String,
            _ body: String? = nil
        )
            async throws -> CurlResponse
        {
            var arguments = ["-X", method, "-H", "X-API-Key: \(RelayGateway.apiKey)"]
            if let body { arguments += ["-H", "Content-Type: application/json", "--data-raw", body] }
            return try await Curl.request(
                "https://127.0.0.1:\(gateway.port("https"))/relay/api/namespaces\(path)",
                arguments
            )
        }

        var gateway = try await LiveGateway.start(configFile: file, directory: directory, registry: gatewayRegistry)
        do {
            let created = try await request(gateway, "PUT", "/news", #"{"subscribe":"any","historySize":20}"#)
            #expect(created.status == 201)
            #expect(created.bodyText.contains(#""historySize":20"#))
            let invalid = try await request(gateway, "PUT", "/news", #"{"historySize":"lots"}"#)
            #expect(invalid.status == 400)
            #expect(invalid.bodyText.contains(#"$.historySize: expected an integer"#))
            let unknown = try await request(gateway, "PUT", "/news", #"{"historySize":5,"colour":1}"#)
            #expect(unknown.status == 400)
            #expect(unknown.bodyText.contains(#"$.colour: unknown key"#))
            let inconsistent = try await request(gateway, "PATCH", "/news", #"{"historySize":0}"#)
            #expect(inconsistent.status == 400)
            #expect(inconsistent.bodyText.contains("$.recovery: recovery needs history"))
            let patched = try await request(gateway, "PATCH", "/news", #"{"presence":true}"#)
            #expect(patched.status == 200)
            #expect(patched.bodyText.contains(#""presence":true"#))
            #expect(try await request(gateway, "DELETE", "/feed").status == 204)
            #expect(try await request(gateway, "DELETE", "/feed").status == 404)
            #expect(try await request(gateway, "PATCH", "/absent", "{}").status == 404)

            // The new namespace works at once.
            let (client, _) = try await RelayGateway.connect(gateway, token: try RelayTokens.mint("nina"))
            let subscribed = try await client.call("subscribe", ["channel": "news:today"])
            #expect(result(subscribed, "subscribe")?["recoverable"] as? Bool == true)
            #expect(errorCode(try await client.call("subscribe", ["channel": "feed:x"])) == 102)
            client.close()
            try await gateway.shutdown()
        } catch {
            try? await gateway.shutdown()
            throw error
        }

        gateway = try await LiveGateway.start(configFile: file, directory: directory, registry: gatewayRegistry)
        do {
            let list = try await request(gateway, "GET", "")
            let namespaces = try #require(
                (try JSONSerialization.jsonObject(with: list.body) as? [String: Any])?["namespaces"] as? [String: Any]
            )
            #expect(namespaces["news"] != nil)
            #expect(namespaces["feed"] == nil)
            let news = try await request(gateway, "GET", "/news")
            #expect(news.bodyText.contains(#""presence":true"#))
            try await gateway.shutdown()
        } catch {
            try? await gateway.shutdown()
            throw error
        }
    }

    @Test("stats count connections, subscriptions and pushes per namespace")
    func stats() async throws {
        try await RelayGateway.with { gateway in
            let (client, _) = try await RelayGateway.connect(gateway, token: try RelayTokens.mint("sam"))
            _ = try await client.call("subscribe", ["channel": "chat:s"])
            _ = try await RelayGateway.api(gateway, "publish", ["channel": "chat:s", "data": 1])
            _ = try await client.nextPublication()
            let response = try await Curl.request(
                "https://127.0.0.1:\(gateway.port("https"))/relay/api/stats",
                ["-H", "X-API-Key: \(RelayGateway.apiKey)"]
            )
            let stats = try #require(try JSONSerialization.jsonObject(with: response.body) as? [String: Any])
            #expect(stats["connections"] as? Int == 1)
            #expect(stats["subscriptions"] as? Int == 1)
            #expect(stats["pushesOut"] as? Int ?? 0 >= 2)
            let chat = (stats["namespaces"] as? [String: Any])?["chat"] as? [String: Any]
            #expect(chat?["subscriptions"] as? Int == 1)
            client.close()
        }
    }
}
