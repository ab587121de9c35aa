import Foundation

/// Tokens already verified on one event loop, keyed by the token itself (as Envoy's
/// `jwt_authn` cache is), so a repeated token costs a hash and a lookup instead of a signature
/// check. Bounded; an entry is never used after its token's `exp`.
///
/// The key was the token's SHA-256 until callgrind showed it at 10% of an authenticated
/// HTTP/1.1 request (18,900 instructions for a 600-byte token); `Hasher` (SipHash with a
/// per-process seed) over the bytes and one comparison cost a fraction of that, and a match is
/// still the whole token, never a digest that could collide.
///
/// Only its event loop touches it, so it needs no lock and a hit needs no hop.
final class VerifiedTokenCache {
    /// A token compared byte for byte. `String`'s own equality is Unicode canonical equivalence,
    /// under which a token with `K` written as U+212A KELVIN SIGN equals the original: a
    /// different credential must never hit another's entry.
    struct Key: Hashable {
        private var token: String

        init(_ token: String) { self.token = token }

        static func == (lhs: Key, rhs: Key) -> Bool {
            var left = lhs.token
            var right = rhs.token
            return left.withUTF8 { a in
                right.withUTF8 { b in
                    // memcmp: the generic elementsEqual took 24 instructions a byte.
                    a.count == b.count && (a.isEmpty || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0)
                }
            }
        }

        func hash(into hasher: inout Hasher) {
            var token = self.token
            token.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        }
    }

    private var entries: [Key: VerifiedToken] = [:]
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    static func key(for token: String) -> Key { Key(token) }

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
