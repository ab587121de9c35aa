import NIOCore
import NIOPosix
import RESPClient
import Testing

@Suite("Redis client pool")
struct RedisClientTests {
    @Test("evalSHA falls back to EVAL on NOSCRIPT, which loads the script")
    func evalSHA() async throws {
        let server = try await RedisTestServer.start()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let client = RedisClient(configuration: try server.configuration(), eventLoopGroup: group, logger: quietLogger)
        client.start()
        try await client.waitUntilConnected(timeout: .seconds(20)).get()
        let loop = group.any()
        let script = RedisScript("return KEYS[1] .. ':' .. ARGV[1]")
        let reply = try await client.evalSHA(script, keys: ["k"], arguments: ["a"], on: loop).get()
        #expect(reply.string == "k:a")
        let exists = try await client.send("SCRIPT", ["EXISTS", RESPArgument(script.sha1)], on: loop).get()
        #expect(exists.array?.first?.int64 == 1)
        _ = try await client.send("SCRIPT", ["FLUSH"], on: loop).get()
        let again = try await client.evalSHA(script, keys: ["x"], arguments: ["b"], on: loop).get()
        #expect(again.string == "x:b")
        let broken = RedisScript("return redis.call('NOSUCHCOMMAND')")
        await #expect(throws: RedisServerError.self) {
            try await client.evalSHA(broken, keys: [], arguments: [], on: loop).get()
        }
        try await client.shutdown().get()
        try await client.shutdown().get()
        try await group.shutdownGracefully()
    }

    @Test("commands fail fast while redis is down and work again once it is back")
    func reconnects() async throws {
        let server = try await RedisTestServer.start()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let client = RedisClient(configuration: try server.configuration(), eventLoopGroup: group, logger: quietLogger)
        client.start()
        try await client.waitUntilConnected(timeout: .seconds(20)).get()
        #expect(client.isConnected)
        #expect(client.serverVersion?.hasPrefix("7.") == true)
        for loop in group.makeIterator() {
            let reply = try await client.send("PING", [], on: loop).get()
            #expect(reply.string == "PONG")
        }

        await server.stop()
        #expect(try await eventually { !client.isConnected })
        // Fails at once with `unavailable` (not queued until a command timeout): the error
        // says so; no wall-clock bound, the whole suite shares two cores.
        await #expect(throws: RedisClientError.unavailable) {
            try await client.send("PING", [], on: group.any()).get()
        }

        try await server.restart()
        try await client.waitUntilConnected(timeout: .seconds(20)).get()
        for loop in group.makeIterator() {
            let reply = try await client.send("PING", [], on: loop).get()
            #expect(reply.string == "PONG")
        }
        try await client.shutdown().get()
        try await group.shutdownGracefully()
    }

    @Test("waitUntilConnected fails after its timeout when redis is not there")
    func waitTimesOut() async throws {
        var configuration = RedisClientConfiguration(endpoint: try RedisEndpoint(url: "redis://127.0.0.1:1"))
        configuration.reconnectMaxBackoff = .milliseconds(50)
        let client = RedisClient(
            configuration: configuration,
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: quietLogger
        )
        client.start()
        await #expect(throws: RedisClientError.connectTimeout) {
            try await client.waitUntilConnected(timeout: .milliseconds(300)).get()
        }
        #expect(!client.isConnected)
        try await client.shutdown().get()
    }
}
