import Logging
import NIOCore
import NIOPosix
import RESPClient
import Testing

@Suite("Redis connection against redis-server")
struct RedisConnectionTests {
    private static func connect(_ configuration: RedisClientConfiguration) async throws -> RedisConnection {
        try await RedisConnection.connect(
            configuration,
            on: MultiThreadedEventLoopGroup.singleton.any(),
            logger: quietLogger
        ).get()
    }

    @Test("speaks RESP3 after HELLO and reads the server version")
    func hello() async throws {
        let server = try await RedisTestServer.start()
        let connection = try await Self.connect(server.configuration())
        defer { _ = connection.close() }
        #expect(connection.protocolVersion == 3)
        #expect(connection.serverVersion.hasPrefix("7."))
        let reply = try await connection.send("HELLO", ["3"]).get()
        guard case .map = reply else {
            Issue.record("HELLO replied \(reply.text), not a map")
            return
        }
        #expect(reply["proto"]?.int64 == 3)
        #expect(try await connection.send("PING", []).get().string == "PONG")
    }

    @Test("round-trips a 5 MiB value")
    func largeValue() async throws {
        let server = try await RedisTestServer.start()
        let connection = try await Self.connect(server.configuration())
        defer { _ = connection.close() }
        let pattern = (0..<1024).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var value = ByteBuffer()
        for _ in 0..<(5 * 1024) { value.writeBytes(pattern) }
        #expect(try await connection.send("SET", ["big", RESPArgument(value)]).get().string == "OK")
        let reply = try await connection.send("GET", ["big"]).get()
        #expect(reply.buffer == value)
    }

    @Test("reads nested replies, maps in RESP3 and flat arrays in RESP2")
    func nestedReplies() async throws {
        let server = try await RedisTestServer.start()
        let resp3 = try await Self.connect(server.configuration())
        defer { _ = resp3.close() }
        let nested = try await resp3.send("EVAL", ["return {1, {2, {3, 'x'}}, 'y'}", 0]).get()
        #expect(nested.text == "[:1 [:2 [:3 $x]] $y]")
        _ = try await resp3.send("HSET", ["h", "f1", "v1", "f2", "v2"]).get()
        let map = try await resp3.send("HGETALL", ["h"]).get()
        guard case .map(let pairs) = map else {
            Issue.record("HGETALL in RESP3 replied \(map.text)")
            return
        }
        #expect(pairs.count == 2)
        #expect(map["f2"]?.string == "v2")

        var configuration = try server.configuration()
        configuration.preferredProtocol = 2
        let resp2 = try await Self.connect(configuration)
        defer { _ = resp2.close() }
        #expect(resp2.protocolVersion == 2)
        #expect(resp2.serverVersion.hasPrefix("7."))
        let flat = try await resp2.send("HGETALL", ["h"]).get()
        guard case .array(let elements) = flat else {
            Issue.record("HGETALL in RESP2 replied \(flat.text)")
            return
        }
        #expect(elements.count == 4)
        #expect(flat["f1"]?.string == "v1")
    }

    @Test("reads RESP3 doubles, booleans, nulls, big numbers and verbatim strings")
    func resp3Types() async throws {
        let server = try await RedisTestServer.start()
        let connection = try await Self.connect(server.configuration())
        defer { _ = connection.close() }
        let cases: [(script: String, expected: String)] = [
            ("return {double=1.5}", ",1.5"),
            ("return true", "#true"),
            ("return false", "#false"),
            ("return nil", "_"),
            ("return {big_number='123456789012345678901234567890'}", "(123456789012345678901234567890"),
            ("return {verbatim_string={format='txt', string='hello'}}", "$hello"),
            ("return {map={a=1}}", "{$a=:1}"),
        ]
        for (script, expected) in cases {
            let reply = try await connection.send("EVAL", [RESPArgument("redis.setresp(3); " + script), 0]).get()
            #expect(reply.text == expected, "\(script)")
        }
    }

    @Test("an error reply fails only its own command in a pipeline")
    func errorInPipeline() async throws {
        let server = try await RedisTestServer.start()
        let connection = try await Self.connect(server.configuration())
        defer { _ = connection.close() }
        let set = connection.send("SET", ["k", "v"])
        let wrong = connection.send("LPUSH", ["k", "x"])
        let get = connection.send("GET", ["k"])
        #expect(try await set.get().string == "OK")
        await #expect(throws: RedisServerError.self) { try await wrong.get() }
        do {
            _ = try await wrong.get()
        } catch let error as RedisServerError {
            #expect(error.code == "WRONGTYPE")
        }
        #expect(try await get.get().string == "v")

        _ = try await connection.send("MULTI", []).get()
        _ = try await connection.send("SET", ["a", "1"]).get()
        _ = try await connection.send("LPUSH", ["a", "x"]).get()
        let exec = try await connection.send("EXEC", []).get()
        guard let results = exec.array, results.count == 2, case .error(let nested) = results[1] else {
            Issue.record("EXEC replied \(exec.text)")
            return
        }
        #expect(nested.code == "WRONGTYPE")
    }

    @Test("1,000 pipelined INCRs come back in order")
    func pipelinedIncrements() async throws {
        let server = try await RedisTestServer.start()
        let connection = try await Self.connect(server.configuration())
        defer { _ = connection.close() }
        let futures = (0..<1000).map { _ in connection.send("INCR", ["counter"]) }
        var values: [Int64] = []
        for future in futures { values.append(try await future.get().int64 ?? -1) }
        #expect(values == Array(1...1000))
    }

    @Test("selects the URL's database")
    func selectsDatabase() async throws {
        let server = try await RedisTestServer.start()
        let db3 = try await Self.connect(server.configuration(url: server.url + "/3"))
        defer { _ = db3.close() }
        _ = try await db3.send("SET", ["where", "three"]).get()
        let db0 = try await Self.connect(server.configuration())
        defer { _ = db0.close() }
        #expect(try await db0.send("GET", ["where"]).get().isNull)
        #expect(try await db3.send("GET", ["where"]).get().string == "three")
    }
}
