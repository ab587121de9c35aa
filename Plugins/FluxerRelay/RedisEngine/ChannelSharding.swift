/// Which of several independent Redis shards holds a channel: jump consistent hashing (Lamping
/// and Veach, 2014) of a 64-bit FNV-1a hash of the name, as Centrifugo spreads channels over
/// Redis shards. Adding an address moves only about 1/n of the channels; every node listing the
/// same addresses in the same order agrees on every channel's shard.
enum ChannelSharding {
    /// The shard of `channel` among `count` shards (0 when there is one).
    static func shard(of channel: String, count: Int) -> Int {
        guard count > 1 else { return 0 }
        return Self.jump(Self.fnv1a(channel), buckets: count)
    }

    /// 64-bit FNV-1a of the UTF-8 bytes.
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }

    /// Jump consistent hash: a bucket in `0..<buckets`.
    static func jump(_ key: UInt64, buckets: Int) -> Int {
        var key = key
        var bucket: Int64 = -1
        var next: Int64 = 0
        while next < Int64(buckets) {
            bucket = next
            key = key &* 2_862_933_555_777_941_757 &+ 1
            next = Int64(Double(bucket + 1) * (Double(Int64(1) << 31) / Double((key >> 33) + 1)))
        }
        return Int(bucket)
    }
}
