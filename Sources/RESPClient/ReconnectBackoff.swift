import NIOCore

/// Exponential backoff with full jitter: attempt `n` waits a random time in `0...min(max, min * 2^n)`.
struct ReconnectBackoff {
    let minimum: TimeAmount
    let maximum: TimeAmount
    private(set) var attempt = 0

    init(minimum: TimeAmount, maximum: TimeAmount) {
        self.minimum = minimum
        self.maximum = maximum
    }

    /// The wait before the next attempt; each call doubles the ceiling up to the maximum.
    mutating func next() -> TimeAmount {
        var ceiling = max(self.minimum.nanoseconds, 1)
        for _ in 0..<min(self.attempt, 62) {
            let (doubled, overflow) = ceiling.multipliedReportingOverflow(by: 2)
            if overflow || doubled >= self.maximum.nanoseconds {
                ceiling = self.maximum.nanoseconds
                break
            }
            ceiling = doubled
        }
        ceiling = min(ceiling, max(self.maximum.nanoseconds, 1))
        self.attempt += 1
        return .nanoseconds(Int64.random(in: 0...ceiling))
    }

    /// Starts over after a successful connect.
    mutating func reset() {
        self.attempt = 0
    }
}
