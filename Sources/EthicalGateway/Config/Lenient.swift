/// Decodes a value, and when it is broken records the issue and carries on with `nil`.
///
/// Wrapping the elements of the config's lists and maps in `Lenient` is what lets one run report
/// every broken listener, route and backend instead of stopping at the first.
public struct Lenient<Wrapped: Decodable>: Decodable {
    /// The decoded value, or `nil` when decoding failed (the failure is in the session's issues).
    public var value: Wrapped?

    public init(from decoder: any Decoder) throws {
        guard let strict = decoder as? StrictConfigDecoder else {
            self.value = try Wrapped(from: decoder)
            return
        }
        do {
            self.value = try Wrapped(from: decoder)
        } catch {
            strict.session.record(error, decodingValueAt: strict.session.path(decoder.codingPath))
            self.value = nil
        }
    }
}

extension Lenient: Sendable where Wrapped: Sendable {}

/// A string enumeration in the configuration whose decoding error lists the accepted values.
public protocol ConfigEnum: CaseIterable, RawRepresentable, Decodable, Sendable where RawValue == String {}

extension ConfigEnum {
    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        guard let value = Self(rawValue: raw) else {
            let accepted = Self.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw decoder.invalid("expected one of \(accepted), found \"\(raw)\"")
        }
        self = value
    }
}
