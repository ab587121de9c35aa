import EthicalGateway
import EthicalGatewayTesting
import Foundation
import NIOConcurrencyHelpers
import Testing

/// Talks to the admin API with curl, the way an operator's scripts do, and keeps every answer so
/// the OpenAPI test can check each one against the document.
struct AdminClient: Sendable {
    let port: Int
    let token: String?

    /// One recorded exchange: what the OpenAPI document must describe.
    struct Exchange: Sendable {
        var method: String
        var template: String
        var status: Int
        var contentType: String?
        var body: String
    }

    /// Every answer any ``AdminClient`` received in this test process.
    static let recorded = NIOLockedValueBox<[Exchange]>([])

    /// `method path` with the bearer token (unless `token` is overridden), `body` as JSON text and
    /// extra headers; `template` names the OpenAPI path (default: `path`).
    @discardableResult
    func request(
        _ method: String,
        _ path: String,
        body: String? = nil,
        headers: [String: String] = [:],
        token: String?? = nil,
        template: String? = nil,
        timeout: TimeInterval = 20
    ) async throws -> CurlResponse {
        var arguments = ["-X", method]
        if method == "HEAD" { arguments = ["-I"] }
        if let bearer = token ?? self.token { arguments += ["-H", "Authorization: Bearer \(bearer)"] }
        for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
        if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
        let response = try await Curl.request("http://127.0.0.1:\(self.port)\(path)", arguments, timeout: timeout)
        Self.recorded.withLockedValue {
            $0.append(
                Exchange(
                    method: method,
                    template: template ?? Self.template(of: path),
                    status: response.status,
                    contentType: response.header("content-type"),
                    body: response.bodyText
                )
            )
        }
        return response
    }

    /// The OpenAPI path template `path` falls under.
    static func template(of path: String) -> String {
        let segments = path.split(separator: "/")
        if segments.count == 3, segments[0] == "config" { return "/config/{kind}/{name}" }
        return path
    }

    /// The answer's JSON object.
    static func json(_ response: CurlResponse) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: response.body) as? [String: Any] else {
            throw AdminTestError(message: "not a JSON object: \(response.status) \(response.bodyText)")
        }
        return object
    }
}

extension GatewayProcess {
    /// The admin API's port, once its listening line is logged.
    func waitForAdminPort() async throws -> Int {
        try await waitUntil("the admin API listens", seconds: 30) { self.adminPort != nil }
        return self.adminPort!
    }
}

struct AdminTestError: Error, CustomStringConvertible {
    var message: String
    var description: String { self.message }
}

/// A config for live-reload tests: a plain listener, a `hello` route, a relay at `/relay` (memory
/// engine, anonymous subscribers to `news`, publishing with the API key), the admin API on an
/// ephemeral port with `admin.token`; `extraRoutes` and `extraBackends` are appended (JSON members
/// with a leading comma).
enum ReloadConfig {
    static let adminToken = "admin-token-for-tests-0123456789"
    static let apiKey = "relay-api-key-for-reload-tests"

    static func json(extraRoutes: String = "", extraBackends: String = "", grace: Double = 5) -> String {
        """
        { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
          "shutdownGracePeriodSeconds": \(grace),
          "admin": { "port": 0, "tokenFile": "admin.token" },
          "routes": [
            { "name": "hello", "match": { "pathPrefix": "/hello" }, "backend": "hello" },
            { "name": "relay", "match": { "pathPrefix": "/relay" }, "stripPrefix": true, "backend": "relay" }\(extraRoutes)
          ],
          "backends": {
            "hello": { "plugin": "respond", "config": { "status": 200, "body": "hello\\n" } },
            "relay": { "plugin": "fluxer-relay", "config": {
                "allowAnonymous": true, "apiKeyFile": "api.key", "connectTimeoutSeconds": 60,
                "pingIntervalSeconds": 600,
                "namespaces": { "default": { "subscribe": "any", "publish": "none" } } } }\(extraBackends)
          } }
        """
    }

    static let apiRoute = #", { "name": "api", "match": { "pathPrefix": "/api" }, "backend": "api" }"#
    static let apiBackend = #", "api": { "plugin": "respond", "config": { "status": 200, "body": "api\n" } }"#

    /// Runs `body` with a gateway in this process on `config` (with the token and key files),
    /// an admin client, and the base URL of its `http` listener.
    static func withGateway(
        _ config: String = ReloadConfig.json(),
        _ body: (LiveGateway, AdminClient, String) async throws -> Void
    ) async throws {
        try await LiveGateway.with(
            config: config,
            files: ["admin.token": self.adminToken, "api.key": self.apiKey],
            registry: gatewayRegistry
        ) { gateway in
            let admin = AdminClient(port: try #require(gateway.adminPort), token: self.adminToken)
            let base = gateway.currentPort("http").map { "http://127.0.0.1:\($0)" } ?? ""
            try await body(gateway, admin, base)
        }
    }

    /// Writes the config and its files into `directory`; returns the config file.
    static func write(_ config: String, in directory: TemporaryDirectory) throws -> URL {
        _ = try directory.write(self.adminToken + "\n", to: "admin.token")
        _ = try directory.write(self.apiKey + "\n", to: "api.key")
        return try directory.write(config, to: "gateway.json")
    }
}
