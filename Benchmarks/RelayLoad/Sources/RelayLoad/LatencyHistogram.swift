/// A log-linear latency histogram in microseconds: exact below 2,048 µs, then 1,024 buckets per
/// power of two (under 0.1% error), up to hours. Fixed memory, no allocation per sample, so
/// recording costs a few instructions on the generator's hot path.
struct LatencyHistogram {
    private static let linear = 2048
    private static let perOctave = 1024
    private static let octaves = 24

    private(set) var counts = [UInt64](repeating: 0, count: linear + perOctave * octaves)
    private(set) var total: UInt64 = 0
    private(set) var maxMicros: UInt64 = 0

    mutating func record(micros: UInt64) {
        self.counts[Self.index(of: micros)] &+= 1
        self.total &+= 1
        if micros > self.maxMicros { self.maxMicros = micros }
    }

    mutating func merge(_ other: LatencyHistogram) {
        for index in other.counts.indices where other.counts[index] > 0 {
            self.counts[index] &+= other.counts[index]
        }
        self.total &+= other.total
        self.maxMicros = max(self.maxMicros, other.maxMicros)
    }

    /// The smallest recorded value with at least `fraction` of the samples at or below it.
    func percentile(_ fraction: Double) -> UInt64 {
        guard self.total > 0 else { return 0 }
        let wanted = max(1, UInt64((Double(self.total) * fraction).rounded(.up)))
        var seen: UInt64 = 0
        for (index, count) in self.counts.enumerated() where count > 0 {
            seen += count
            if seen >= wanted { return min(Self.value(at: index), self.maxMicros) }
        }
        return self.maxMicros
    }

    private static func index(of micros: UInt64) -> Int {
        if micros < UInt64(Self.linear) { return Int(micros) }
        let bits = 64 - micros.leadingZeroBitCount  // 12 or more
        let shift = bits - 11  // keeps the top 11 bits: 1024...2047
        let top = Int(micros >> UInt64(shift))
        return min(
            Self.linear + (shift - 1) * Self.perOctave + (top - Self.perOctave),
            Self.linear + Self.perOctave * Self.octaves - 1
        )
    }

    /// The upper end of a bucket.
    private static func value(at index: Int) -> UInt64 {
        if index < Self.linear { return UInt64(index) }
        let shift = (index - Self.linear) / Self.perOctave + 1
        let top = (index - Self.linear) % Self.perOctave + Self.perOctave
        return (UInt64(top + 1) << UInt64(shift)) - 1
    }
}
