import Crypto

/// Tokens already verified on one event loop, keyed by the SHA-256 of the token, so a repeated
/// token costs a hash and a lookup instead of a signature check. Bounded; an entry is never
/// used after its token's `exp`.
///
/// Only its event loop touches it, so it needs no lock and a hit needs no hop.
final class VerifiedTokenCache {
    typealias Key = SHA256Digest

    private var entries: [Key: VerifiedToken] = [:]
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    static func key(for token: String) -> Key {
        var token = token
        return token.withUTF8 { SHA256.hash(data: $0) }
    }

    /// The verified token, unless absent or expired at `now` (expired entries are dropped).
    func lookup(_ key: Key, now: Double) -> VerifiedToken? {
        guard let entry = self.entries[key] else { return nil }
        guard now <= entry.expiresAt else {
            self.entries[key] = nil
            return nil
        }
        return entry
    }

    func insert(_ token: VerifiedToken, for key: Key, now: Double) {
        if self.entries.count >= self.capacity {
            self.entries = self.entries.filter { $0.value.expiresAt >= now }
            if self.entries.count >= self.capacity {
                // Still full of live tokens: forget half rather than grow without bound.
                self.entries = Dictionary(uniqueKeysWithValues: self.entries.prefix(self.capacity / 2).map { $0 })
            }
        }
        self.entries[key] = token
    }

    var count: Int { self.entries.count }
}

@available(*, unavailable)
extension VerifiedTokenCache: Sendable {}

/// Holds a loop's cache; only that loop reads or writes through it.
final class LoopTokenCache: @unchecked Sendable {
    let cache: VerifiedTokenCache
    init(_ cache: VerifiedTokenCache) { self.cache = cache }
}
