import NIOCore

/// The addresses whose `X-Forwarded-*` and `Forwarded` headers are believed: single IPs or CIDR
/// ranges, IPv4 or IPv6.
struct TrustedProxies: Sendable {
    private struct Range: Sendable {
        let bytes: [UInt8]
        let prefixLength: Int

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == self.bytes.count else { return false }
            var remaining = self.prefixLength
            for (lhs, rhs) in zip(address, self.bytes) where remaining > 0 {
                let bits = min(8, remaining)
                let mask: UInt8 = bits == 8 ? 0xFF : ~(0xFF >> UInt8(bits))
                if lhs & mask != rhs & mask { return false }
                remaining -= bits
            }
            return true
        }
    }

    private let ranges: [Range]

    static let none = TrustedProxies(ranges: [])

    private init(ranges: [Range]) {
        self.ranges = ranges
    }

    /// An entry that is not an address or range.
    struct InvalidEntry: Error {
        let index: Int
        let text: String
    }

    /// Parses entries such as `"10.0.0.0/8"`, `"192.168.1.7"`, `"::1"`, `"fd00::/8"`.
    static func parse(_ entries: [String]) -> Result<TrustedProxies, InvalidEntry> {
        var ranges: [Range] = []
        for (offset, entry) in entries.enumerated() {
            let parts = entry.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let address = parts.first, let bytes = Self.addressBytes(String(address)) else {
                return .failure(InvalidEntry(index: offset, text: entry))
            }
            var prefix = bytes.count * 8
            if parts.count == 2 {
                let digits = parts[1]
                guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let parsed = Int(digits),
                    (0...bytes.count * 8).contains(parsed)
                else {
                    return .failure(InvalidEntry(index: offset, text: entry))
                }
                prefix = parsed
            }
            ranges.append(Range(bytes: bytes, prefixLength: prefix))
        }
        return .success(TrustedProxies(ranges: ranges))
    }

    func contains(_ address: SocketAddress?) -> Bool {
        guard !self.ranges.isEmpty, let ip = address?.ipAddress, let bytes = Self.addressBytes(ip) else { return false }
        return self.ranges.contains { $0.contains(bytes) }
    }

    private static func addressBytes(_ text: String) -> [UInt8]? {
        guard let address = try? SocketAddress(ipAddress: text, port: 0) else { return nil }
        switch address {
        case .v4(let v4):
            return withUnsafeBytes(of: v4.address.sin_addr.s_addr) { Array($0) }
        case .v6(let v6):
            return withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        default:
            return nil
        }
    }
}
