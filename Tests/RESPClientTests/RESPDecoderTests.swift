import NIOCore
import NIOEmbedded
import Testing

@testable import RESPClient

@Suite("RESP decoder")
struct RESPDecoderTests {
    /// Replies of every type, with their expected rendering.
    static let samples: [(wire: String, expected: String)] = [
        ("+OK\r\n", "+OK"),
        ("-ERR bad thing\r\n", "-ERR bad thing"),
        (":-42\r\n", ":-42"),
        ("$5\r\nhello\r\n", "$hello"),
        ("$-1\r\n", "_"),
        ("$0\r\n\r\n", "$"),
        ("*3\r\n:1\r\n*2\r\n+a\r\n$1\r\nb\r\n_\r\n", "[:1 [+a $b] _]"),
        ("*-1\r\n", "_"),
        ("*0\r\n", "[]"),
        (",1.5\r\n", ",1.5"),
        (",-inf\r\n", ",-inf"),
        ("#t\r\n", "#true"),
        ("#f\r\n", "#false"),
        ("(12345678901234567890\r\n", "(12345678901234567890"),
        ("!9\r\nSYNTAX ab\r\n", "-SYNTAX ab"),
        ("=8\r\ntxt:some\r\n", "$some"),
        ("%2\r\n+k\r\n:1\r\n$2\r\nk2\r\n~2\r\n:1\r\n:2\r\n", "{+k=:1 $k2=[:1 :2]}"),
        (">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nhey\r\n", ">[$message $ch $hey]"),
        ("|1\r\n+ttl\r\n:3\r\n:7\r\n", ":7"),
        ("*2\r\n-ERR nested\r\n|1\r\n+a\r\n+b\r\n:1\r\n", "[-ERR nested :1]"),
    ]

    private static func decode(
        _ chunks: [ByteBuffer],
        maxBulkLength: Int = 1 << 20,
        maxDepth: Int = 8
    ) throws -> [String] {
        let channel = EmbeddedChannel(
            handler: ByteToMessageHandler(RESPDecoder(maxBulkLength: maxBulkLength, maxDepth: maxDepth))
        )
        var decoded: [String] = []
        for chunk in chunks {
            try channel.writeInbound(chunk)
            while let value = try channel.readInbound(as: RESPValue.self) { decoded.append(value.text) }
        }
        _ = try channel.finish()
        return decoded
    }

    @Test("decodes every type, split into two reads at every byte")
    func splitAtEveryByte() throws {
        let wire = ByteBuffer(string: Self.samples.map(\.wire).joined())
        let expected = Self.samples.map(\.expected)
        #expect(try Self.decode([wire]) == expected)
        for split in 1..<wire.readableBytes {
            let first = wire.getSlice(at: 0, length: split)!
            let second = wire.getSlice(at: split, length: wire.readableBytes - split)!
            let decoded = try Self.decode([first, second])
            #expect(decoded == expected, "split at byte \(split)")
        }
    }

    @Test("decodes replies fed one byte per read")
    func oneBytePerRead() throws {
        let wire = ByteBuffer(string: Self.samples.map(\.wire).joined())
        let chunks = (0..<wire.readableBytes).map { wire.getSlice(at: $0, length: 1)! }
        #expect(try Self.decode(chunks) == Self.samples.map(\.expected))
    }

    @Test("decodes a 16 MiB bulk string arriving in 64 KiB reads")
    func largeBulk() throws {
        let size = 16 * 1024 * 1024
        var wire = ByteBuffer(string: "$\(size)\r\n")
        wire.writeRepeatingByte(UInt8(ascii: "x"), count: size)
        wire.writeString("\r\n:1\r\n")
        var chunks: [ByteBuffer] = []
        var offset = 0
        while offset < wire.readableBytes {
            let length = min(65536, wire.readableBytes - offset)
            chunks.append(wire.getSlice(at: offset, length: length)!)
            offset += length
        }
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPDecoder(maxBulkLength: size)))
        var values: [RESPValue] = []
        for chunk in chunks {
            try channel.writeInbound(chunk)
            while let value = try channel.readInbound(as: RESPValue.self) { values.append(value) }
        }
        #expect(values.count == 2)
        #expect(values.first?.buffer?.readableBytes == size)
        #expect(values.last?.int64 == 1)
    }

    @Test(
        "rejects broken input with a protocol error",
        arguments: [
            "?what\r\n", ":12a\r\n", "$5\r\nhelloXX", "#x\r\n", ",nope\r\n", "$200\r\n", "+no carriage return\n",
            "+a line longer than the limit of bytes without an end", "%-1\r\n",
        ]
    )
    func rejectsBrokenInput(wire: String) throws {
        #expect {
            _ = try Self.decode([ByteBuffer(string: wire)], maxBulkLength: 32)
        } throws: { error in
            (error as? RedisClientError)?.isProtocolError == true
        }
    }

    @Test("rejects nesting deeper than the limit and accepts it at the limit")
    func depthLimit() throws {
        let atLimit = String(repeating: "*1\r\n", count: 8) + ":1\r\n"
        #expect(try Self.decode([ByteBuffer(string: atLimit)]).count == 1)
        let tooDeep = String(repeating: "*1\r\n", count: 9) + ":1\r\n"
        #expect {
            _ = try Self.decode([ByteBuffer(string: tooDeep)])
        } throws: { error in
            (error as? RedisClientError)?.isProtocolError == true
        }
    }

    @Test("encodes a command as an array of bulk strings")
    func encodesCommands() {
        var buffer = ByteBuffer()
        buffer.writeRESPCommand("SET", ["k", RESPArgument(ByteBuffer(string: "v\r\n")), 42, RESPArgument(UInt64(7))])
        #expect(String(buffer: buffer) == "*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n$2\r\n42\r\n$1\r\n7\r\n")
    }
}
