import NIOCore
import NIOPosix
import RESPClient
import Testing

@Suite("Redis timeouts", .timeLimit(.minutes(5)))
struct RedisTimeoutTests {
    @Test("a late reply fails with commandTimeout and closes the connection")
    func commandTimeout() async throws {
        let server = try await UnresponsiveServer.start(answerHello: true)
        var configuration = RedisClientConfiguration(
            endpoint: try RedisEndpoint(url: "redis://127.0.0.1:\(server.port)")
        )
        // Long enough for the HELLO exchange on a loaded machine (it runs under the same limit).
        configuration.commandTimeout = .seconds(2)
        let connection = try await RedisConnection.connect(
            configuration,
            on: MultiThreadedEventLoopGroup.singleton.any(),
            logger: quietLogger
        ).get()
        #expect(connection.serverVersion == "7.0.0")
        // The error names the command timeout (a client without one would wait forever, into
        // the suite's time limit). No wall-clock bound: the whole suite shares two cores.
        await #expect(throws: RedisClientError.commandTimeout) {
            try await connection.send("GET", ["k"]).get()
        }
        try await connection.closeFuture.get()
        await #expect(throws: RedisClientError.connectionClosed) {
            try await connection.send("GET", ["k"]).get()
        }
        try await server.stop()
    }

    @Test("a server that never answers HELLO fails with connectTimeout")
    func connectTimeout() async throws {
        let server = try await UnresponsiveServer.start(answerHello: false)
        var configuration = RedisClientConfiguration(
            endpoint: try RedisEndpoint(url: "redis://127.0.0.1:\(server.port)")
        )
        configuration.connectTimeout = .milliseconds(300)
        configuration.commandTimeout = .seconds(10)
        await #expect(throws: RedisClientError.connectTimeout) {
            _ = try await RedisConnection.connect(
                configuration,
                on: MultiThreadedEventLoopGroup.singleton.any(),
                logger: quietLogger
            ).get()
        }
        try await server.stop()
    }
}
