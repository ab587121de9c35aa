import EthicalGateway
import EthicalGatewayTesting
import Testing

/// The `websocket-echo` backend's configuration: defaults build, each bad value is named with
/// its JSON path.
@Suite("websocket-echo: configuration")
struct WebSocketEchoConfigTests {
    static func issues(_ echo: String) async throws -> [String] {
        let config = plainConfig(
            routes: #"[ { "name": "e", "match": { "pathPrefix": "/echo" }, "backend": "echo" } ]"#,
            backends: #"{ "echo": { "plugin": "websocket-echo", "config": \#(echo) } }"#
        )
        return try await configIssues(config).map(\.description)
    }

    @Test("an empty config and the largest limit build")
    func good() async throws {
        #expect(try await Self.issues("{}").isEmpty)
        #expect(try await Self.issues(#"{ "maxMessageBytes": 67108864, "permessageDeflate": false }"#).isEmpty)
    }

    @Test("a limit out of range, a wrong type and an unknown key are each named with their path")
    func bad() async throws {
        let outOfRange = try await Self.issues(#"{ "maxMessageBytes": 0 }"#)
        #expect(
            outOfRange == ["$.backends.echo.config.maxMessageBytes: expected 1 to 67108864, found 0"],
            "\(outOfRange)"
        )
        let tooLarge = try await Self.issues(#"{ "maxMessageBytes": 67108865 }"#)
        #expect(tooLarge.contains { $0.hasPrefix("$.backends.echo.config.maxMessageBytes: expected 1 to 67108864") })
        let wrongType = try await Self.issues(#"{ "permessageDeflate": "yes" }"#)
        #expect(wrongType.contains { $0.hasPrefix("$.backends.echo.config.permessageDeflate") }, "\(wrongType)")
        let unknown = try await Self.issues(#"{ "echoPrefix": "> " }"#)
        #expect(
            unknown.contains { $0.contains("$.backends.echo.config.echoPrefix") && $0.contains("unknown key") },
            "\(unknown)"
        )
    }
}
