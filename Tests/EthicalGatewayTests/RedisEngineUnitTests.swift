import NIOCore
import Testing

@testable import FluxerRelayPlugin

/// The Redis engine's pure parts: channel sharding, the pub/sub payload between nodes, and how
/// presence keeps users.
@Suite("Fluxer Relay: Redis engine parts")
struct RedisEngineUnitTests {
    @Test("channels spread over shards evenly, and adding a shard moves only about 1/n of them")
    func sharding() {
        let channels = (0..<10_000).map { "chat:room-\($0)" }
        var counts = [0, 0, 0]
        for channel in channels { counts[ChannelSharding.shard(of: channel, count: 3)] += 1 }
        for count in counts { #expect((3_000...3_700).contains(count), "\(counts)") }
        let moved = channels.filter {
            ChannelSharding.shard(of: $0, count: 3) != ChannelSharding.shard(of: $0, count: 4)
        }.count
        #expect((2_100...2_900).contains(moved), "\(moved) of 10000 moved; about 2500 expected")
        #expect(channels.allSatisfy { ChannelSharding.shard(of: $0, count: 1) == 0 })
        // Stable across processes and nodes: FNV-1a's published values, not Swift's seeded Hasher.
        #expect(ChannelSharding.fnv1a("") == 0xcbf2_9ce4_8422_2325)
        #expect(ChannelSharding.fnv1a("a") == 0xaf63_dc4c_8601_ec8c)
    }

    @Test("pub/sub payloads: publications with offset and epoch, joins, leaves; anything else is ignored")
    func payloads() {
        let publication = RedisPubSubPayload(ByteBuffer(string: #"p12:abc:{"data":{"n":1}}"#))
        #expect(publication == .publication(offset: 12, epoch: "abc", body: ByteBuffer(string: #"{"data":{"n":1}}"#)))
        let unpositioned = RedisPubSubPayload(ByteBuffer(string: #"p0::{"data":1}"#))
        #expect(unpositioned == .publication(offset: 0, epoch: "", body: ByteBuffer(string: #"{"data":1}"#)))
        #expect(
            RedisPubSubPayload(ByteBuffer(string: #"j{"user":"a"}"#)) == .join(ByteBuffer(string: #"{"user":"a"}"#))
        )
        #expect(
            RedisPubSubPayload(ByteBuffer(string: #"l{"user":"a"}"#)) == .leave(ByteBuffer(string: #"{"user":"a"}"#))
        )
        for garbage in ["", "x", "p", "pabc:e:{}", "p12", "p12:epoch"] {
            #expect(RedisPubSubPayload(ByteBuffer(string: garbage)) == nil, "\(garbage)")
        }
    }

    @Test("a publication gets its offset spliced in without being decoded")
    func offsetSplice() throws {
        let spliced = RedisPubSubPayload.withOffset(ByteBuffer(string: #"{"data":{"n":1}}"#), offset: 7)
        #expect(String(buffer: spliced) == #"{"offset":7,"data":{"n":1}}"#)
        let parsed = try WireJSON.parse(spliced.readableBytesView)
        #expect(parsed["offset"]?.unsignedValue == 7)
        #expect(String(buffer: RedisPubSubPayload.withOffset(ByteBuffer(string: "{}"), offset: 3)) == #"{"offset":3}"#)
        #expect(
            String(buffer: RedisPubSubPayload.withOffset(ByteBuffer(string: #"{"data":1}"#), offset: 0))
                == #"{"data":1}"#
        )
    }

    @Test("presence keeps a user with a newline or a percent sign as that one user")
    func presenceUsers() {
        #expect(RedisEngine.presenceUserKey("alice") == "alice")
        #expect(RedisEngine.presenceUserKey("eve\nmallory") == "eve%0Amallory")
        #expect(RedisEngine.presenceUserKey("eve\r\nmallory") == "eve\r%0Amallory")
        #expect(RedisEngine.presenceUserKey("100%0A") == "100%250A")
        #expect(RedisEngine.presenceUserKey("eve\nmallory") != RedisEngine.presenceUserKey("eve%0Amallory"))
    }
}
