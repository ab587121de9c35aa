import Logging
import NIOCore
import NIOPosix
import RESPClient
import Testing

@Suite("Redis authentication")
struct RedisAuthenticationTests {
    private static func connect(_ configuration: RedisClientConfiguration) async throws -> RedisConnection {
        try await RedisConnection.connect(
            configuration,
            on: MultiThreadedEventLoopGroup.singleton.any(),
            logger: quietLogger
        ).get()
    }

    private static func expectAuthenticationFailure(_ configuration: RedisClientConfiguration) async {
        do {
            let connection = try await Self.connect(configuration)
            _ = connection.close()
            Issue.record("connected without the right credentials")
        } catch let error as RedisClientError {
            #expect(error.isAuthenticationFailure, "\(error)")
        } catch {
            Issue.record("failed with \(error), not an authentication failure")
        }
    }

    @Test("a password authenticates in RESP3 and RESP2; wrong or missing ones fail")
    func password() async throws {
        let server = try await RedisTestServer.start(extraArguments: ["--requirepass", "secret"])
        for preferredProtocol in [3, 2] {
            var good = try server.configuration(url: "redis://:secret@127.0.0.1:\(server.port)")
            good.preferredProtocol = preferredProtocol
            let connection = try await Self.connect(good)
            #expect(connection.protocolVersion == preferredProtocol)
            #expect(try await connection.send("PING", []).get().string == "PONG")
            _ = try await connection.close().get()

            var wrong = try server.configuration(url: "redis://:nope@127.0.0.1:\(server.port)")
            wrong.preferredProtocol = preferredProtocol
            await Self.expectAuthenticationFailure(wrong)

            var missing = try server.configuration()
            missing.preferredProtocol = preferredProtocol
            await Self.expectAuthenticationFailure(missing)
        }
    }

    @Test("the configuration's password overrides the URL's")
    func passwordOverride() async throws {
        let server = try await RedisTestServer.start(extraArguments: ["--requirepass", "secret"])
        var configuration = try server.configuration(url: "redis://:stale@127.0.0.1:\(server.port)")
        configuration.password = "secret"
        let connection = try await Self.connect(configuration)
        defer { _ = connection.close() }
        #expect(try await connection.send("PING", []).get().string == "PONG")
    }

    @Test("an ACL user authenticates by name in RESP3 and RESP2")
    func aclUser() async throws {
        let server = try await RedisTestServer.start(configFile: ["user alice on >secret ~* &* +@all"])
        for preferredProtocol in [3, 2] {
            var configuration = try server.configuration(url: "redis://alice:secret@127.0.0.1:\(server.port)")
            configuration.preferredProtocol = preferredProtocol
            let connection = try await Self.connect(configuration)
            #expect(try await connection.send("ACL", ["WHOAMI"]).get().string == "alice")
            _ = try await connection.close().get()

            var wrong = try server.configuration(url: "redis://alice:wrong@127.0.0.1:\(server.port)")
            wrong.preferredProtocol = preferredProtocol
            await Self.expectAuthenticationFailure(wrong)
        }
    }
}
