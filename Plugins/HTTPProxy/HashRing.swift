/// A consistent-hash ring over the upstreams: each upstream owns `weight x 100` points, placed by
/// a fixed hash (FNV-1a, not Swift's per-process seeded `Hasher`), so every gateway replica maps
/// a key to the same upstream, and removing an upstream moves only the keys it owned.
struct HashRing: Sendable {
    private let points: [(hash: UInt64, upstream: Int)]

    static let pointsPerWeight = 100

    init(upstreams: [Upstream]) {
        var points: [(hash: UInt64, upstream: Int)] = []
        for upstream in upstreams {
            for replica in 0..<(upstream.weight * Self.pointsPerWeight) {
                points.append((Self.hash("\(upstream.url)#\(replica)"), upstream.index))
            }
        }
        self.points = points.sorted { $0.hash < $1.hash }
    }

    /// The upstreams in ring order starting at `key`'s position, each once; the caller takes
    /// the first that is available.
    func candidates(for key: String) -> some Sequence<Int> {
        let hash = Self.hash(key)
        var low = 0
        var high = self.points.count
        while low < high {
            let middle = (low + high) / 2
            if self.points[middle].hash < hash { low = middle + 1 } else { high = middle }
        }
        let start = low
        var seen = Set<Int>()
        return (0..<self.points.count).lazy.map { self.points[(start + $0) % self.points.count].upstream }
            .filter { seen.insert($0).inserted }
    }

    /// 64-bit FNV-1a, then MurmurHash3's finalizer: FNV alone mixes the last bytes of short,
    /// similar keys (`user-1`, `user-2`) into the low bits only, which would bunch them on the ring.
    static func hash(_ key: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        hash ^= hash >> 33
        hash &*= 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        hash &*= 0xc4ce_b9fe_1a85_ec53
        hash ^= hash >> 33
        return hash
    }
}
