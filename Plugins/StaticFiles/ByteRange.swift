import Foundation

/// A `Range: bytes=...` request header, as far as a static file server honours it (RFC 9110
/// section 14.2): one range, `start-end`, `start-` or `-suffix`. Several ranges are answered
/// with the whole file, which the RFC allows.
enum ByteRange: Equatable {
    /// Inclusive byte positions within the file.
    case satisfiable(start: Int64, end: Int64)
    /// Well-formed but outside the file: 416.
    case unsatisfiable
    /// Not a single byte range: serve the whole file.
    case ignored

    static func parse(_ header: String, size: Int64) -> ByteRange {
        guard header.hasPrefix("bytes=") else { return .ignored }
        let spec = header.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return .ignored }
        let first = spec[..<dash]
        let last = spec[spec.index(after: dash)...]
        if first.isEmpty {
            guard let suffix = Int64(last), suffix >= 0 else { return .ignored }
            guard suffix > 0, size > 0 else { return .unsatisfiable }
            return .satisfiable(start: max(0, size - suffix), end: size - 1)
        }
        guard let start = Int64(first), start >= 0 else { return .ignored }
        var end = size - 1
        if !last.isEmpty {
            guard let parsed = Int64(last), parsed >= start else { return .ignored }
            end = min(parsed, size - 1)
        }
        guard start < size else { return .unsatisfiable }
        return .satisfiable(start: start, end: end)
    }
}
