import Crypto
import EthicalGateway
import EthicalGatewayTesting
import Foundation

/// HS256 tokens for relay tests, signed with the key the relay test configs declare inline.
enum RelayTokens {
    static let secret = Array("relay-tests-secret-0123456789abcdef-0123456789abcdef".utf8)
    static let issuer = "https://relay-tests.local"
    static let audience = "relay"

    /// The issuer declaration for `issuers.tests`.
    static var issuerJSON: String {
        let key = Data(Self.secret).base64URLEncoded
        return """
            { "issuer": "\(Self.issuer)", "audiences": ["\(Self.audience)"], "algorithms": ["HS256"],
              "keys": [ { "kty": "oct", "kid": "relay", "k": "\(key)" } ] }
            """
    }

    /// A signed token for `subject` with `scopes`, `channels` and `ttl` seconds to live.
    static func mint(
        _ subject: String,
        scopes: [String] = [],
        channels: [String]? = nil,
        ttl: Double = 3600,
        extra: [String: Any] = [:]
    ) throws -> String {
        let now = Date().timeIntervalSince1970
        var claims: [String: Any] = [
            "iss": Self.issuer, "aud": Self.audience, "sub": subject, "iat": Int(now), "exp": Int(now + ttl),
        ]
        if !scopes.isEmpty { claims["scope"] = scopes.joined(separator: " ") }
        if let channels { claims["channels"] = channels }
        claims.merge(extra) { $1 }
        let header = Data(#"{"alg":"HS256","typ":"JWT","kid":"relay"}"#.utf8).base64URLEncoded
        let payload = try JSONSerialization.data(withJSONObject: claims).base64URLEncoded
        let signingInput = "\(header).\(payload)"
        let signature = HMAC<SHA256>.authenticationCode(
            for: Array(signingInput.utf8),
            using: SymmetricKey(data: Self.secret)
        )
        return "\(signingInput).\(Data(signature).base64URLEncoded)"
    }
}

extension Data {
    var base64URLEncoded: String {
        self.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// A gateway with a relay mounted at `/relay` over TLS, for relay tests.
enum RelayGateway {
    static let apiKey = "relay-test-api-key-0123456789"

    /// The gateway config: the relay's `config` members are `relayConfig` (without braces);
    /// `plugin` is the backend's plugin id (a test variant of the relay).
    /// `graceSeconds` is the gateway's `shutdownGracePeriodSeconds`.
    static func config(
        relay relayConfig: String,
        routeAuth: Bool = true,
        plugin: String = "fluxer-relay",
        graceSeconds: Int = 5
    ) -> String {
        // A minute to send `connect` (default 10 s): test clients send it at once, but the whole
        // suite shares two cores, and a starved test task must not look like a stale client.
        let connectTimeout = #""connectTimeoutSeconds": 60, "#
        let auth =
            routeAuth
            ? #", "auth": { "issuers": ["tests"], "anonymous": true, "queryParameter": "token" }"# : ""
        return """
            { "listeners": [ { "name": "https", "address": "127.0.0.1", "port": 0, "tls": {} } ],
              "shutdownGracePeriodSeconds": \(graceSeconds),
              "issuers": { "tests": \(RelayTokens.issuerJSON) },
              "routes": [ { "name": "relay", "match": { "pathPrefix": "/relay" }, "stripPrefix": true,
                            "backend": "relay"\(auth) } ],
              "backends": { "relay": { "plugin": "\(plugin)", "config": {
                  "issuers": ["tests"], "apiKeyFile": "api.key", \(connectTimeout)\(relayConfig) } } } }
            """
    }

    /// Namespaces used by most tests.
    static let namespaces = """
        "namespaces": {
          "default": { "subscribe": "authenticated", "publish": "none" },
          "chat": { "subscribe": "authenticated", "publish": "subscribers", "presence": true, "joinLeave": true,
                    "historySize": 100 },
          "feed": { "subscribe": "any", "publish": "scope", "historySize": 3 },
          "private": { "subscribe": "claim", "publish": "none" },
          "slow": { "subscribe": "authenticated", "publish": "any", "historySize": 5000, "slowConsumer": "dropOldest" },
          "strict": { "subscribe": "authenticated", "publish": "any", "slowConsumer": "disconnect" }
        }
        """

    /// Runs `body` with a live gateway whose relay has `relayConfig` (default: the namespaces above).
    static func with<Result: Sendable>(
        relay relayConfig: String = namespaces,
        plugin: String = "fluxer-relay",
        graceSeconds: Int = 5,
        registry: PluginRegistry = gatewayRegistry,
        prepare: (TemporaryDirectory) throws -> Void = { _ in },
        _ body: (LiveGateway) async throws -> Result
    ) async throws -> Result {
        try await LiveGateway.with(
            config: self.config(relay: relayConfig, plugin: plugin, graceSeconds: graceSeconds),
            files: ["api.key": self.apiKey + "\n"],
            registry: registry,
            prepare: prepare,
            body
        )
    }

    /// `GET <mount>/api/stats` with the API key, decoded.
    static func stats(_ gateway: LiveGateway) async throws -> [String: Any] {
        let response = try await Curl.request(
            "https://127.0.0.1:\(gateway.port("https"))/relay/api/stats",
            ["-H", "X-API-Key: \(self.apiKey)"]
        )
        guard let stats = try JSONSerialization.jsonObject(with: response.body) as? [String: Any] else {
            throw RelayTestClientError(message: "stats: not a JSON object: \(response.status) \(response.bodyText)")
        }
        return stats
    }

    /// Polls ``stats(_:)`` until `condition` holds, for at most `seconds`; returns the last stats.
    static func waitForStats(
        _ gateway: LiveGateway,
        seconds: Double = 10,
        until condition: ([String: Any]) -> Bool
    ) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        var stats = try await self.stats(gateway)
        while !condition(stats), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            stats = try await self.stats(gateway)
        }
        return stats
    }

    /// A connected client: WebSocket opened and `connect` answered.
    static func connect(
        _ gateway: LiveGateway,
        token: String?,
        inQuery: Bool = false,
        receiveBufferBytes: Int? = nil
    ) async throws -> (client: RelayTestClient, reply: [String: Any]) {
        let path = "/relay/connection/websocket" + (inQuery ? "?token=\(token ?? "")" : "")
        let client = try await RelayTestClient.connect(
            port: gateway.port("https"),
            path: path,
            receiveBufferBytes: receiveBufferBytes
        )
        var params: [String: Any] = [:]
        if let token, !inQuery { params["token"] = token }
        let reply = try await client.call("connect", params)
        return (client, reply)
    }

    /// Calls a server API method with the API key; returns the decoded JSON body.
    static func api(_ gateway: LiveGateway, _ method: String, _ params: [String: Any]) async throws -> [String: Any] {
        let body = String(decoding: try JSONSerialization.data(withJSONObject: params), as: UTF8.self)
        let response = try await Curl.request(
            "https://127.0.0.1:\(gateway.port("https"))/relay/api/\(method)",
            [
                "-X", "POST", "-H", "X-API-Key: \(self.apiKey)", "-H", "Content-Type: application/json", "--data-raw",
                body,
            ]
        )
        guard let object = try JSONSerialization.jsonObject(with: response.body) as? [String: Any] else {
            throw RelayTestClientError(message: "\(method): not a JSON object: \(response.status) \(response.bodyText)")
        }
        return object
    }
}

/// `reply[method]` as an object (the result of a successful call).
func result(_ reply: [String: Any], _ method: String) -> [String: Any]? {
    reply[method] as? [String: Any]
}

/// `reply.error.code`, if the reply is an error.
func errorCode(_ reply: [String: Any]) -> Int? {
    (reply["error"] as? [String: Any])?["code"] as? Int
}

extension RelayTestClient {
    /// The next publication push on any channel, skipping joins and leaves.
    func nextPublication(timeout: Duration = .seconds(10)) async throws -> [String: Any] {
        while true {
            let push = try await self.nextPush(timeout: timeout)
            if let publication = (push["push"] as? [String: Any])?["pub"] as? [String: Any] { return publication }
        }
    }
}
