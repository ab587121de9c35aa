import Crypto
public import Foundation

/// The text a configuration was read from, and its version: the SHA-256 of those bytes. The
/// version is the admin API's `ETag` and appears in reload answers and logs, so an operator can
/// tell which configuration is in service.
public struct ConfigSource: Sendable {
    /// The configuration's bytes, as read from the file or received by the admin API.
    public let data: Data
    /// The lowercase hex SHA-256 of ``data``.
    public let version: String
    /// ``data`` parsed: what a reload compares section by section with the configuration in
    /// service, to carry unchanged plugins over.
    public let document: JSONValue

    /// Parses `data` strictly; throws ``ConfigValidationError`` when it is not a JSON document.
    public init(data: Data) throws {
        self.document = try JSONValue.parse(data)
        self.data = data
        self.version = Self.version(of: data)
    }

    /// The version `data` would have.
    public static func version(of data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// The value at `key` of the top-level object, e.g. `source["backends"]`.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self.document else { return nil }
        return members[key]
    }

    /// The member `name` of the top-level object `section`, e.g. one backend's declaration.
    public func member(_ name: String, of section: String) -> JSONValue? {
        guard case .object(let members)? = self[section] else { return nil }
        return members[name]
    }

    /// The first 12 hex digits of the version, for log lines.
    public var shortVersion: String { String(self.version.prefix(12)) }
}
