public import Foundation

/// A JSON document as a tree, kept so that a plugin's own configuration can be decoded after the
/// plugin that owns it is known, and so that every error can name its JSON path.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses JSON text strictly (``JSONParser``): duplicate keys and numbers out of range are
    /// errors with their JSON path.
    ///
    /// - Throws: ``ConfigValidationError`` with every such issue, or the syntax error at `$`.
    public static func parse(_ data: Data) throws -> JSONValue {
        try JSONParser.parse(Array(data))
    }

    /// A short description of the value's type for error messages, e.g. `a string "abc"`.
    var kindDescription: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return "a boolean (\(value))"
        case .number(let value):
            return value.rounded() == value && abs(value) < 1e15 ? "a number (\(Int64(value)))" : "a number (\(value))"
        case .string(let value):
            let shown = value.count > 40 ? String(value.prefix(40)) + "..." : value
            return "a string (\"\(shown)\")"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

extension JSONValue {
    /// The string, when the value is one.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }
}

extension JSONValue {
    /// Decodes `type` from this value the way configurations are decoded: unknown keys and
    /// wrong types are errors, each naming its JSON path under `basePath`.
    ///
    /// - Throws: ``ConfigValidationError`` with every issue found.
    public func decodeStrictly<T: Decodable>(_ type: T.Type, basePath: String = "$") throws -> T {
        let (value, issues) = StrictConfigDecoder.decode(type, from: self, basePath: basePath)
        guard issues.isEmpty, let value else { throw ConfigValidationError(issues) }
        return value
    }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        if let strict = decoder as? StrictConfigDecoder {
            self = strict.value
            return
        }
        if var array = try? decoder.unkeyedContainer() {
            var elements: [JSONValue] = []
            while !array.isAtEnd {
                elements.append(try array.decode(JSONValue.self))
            }
            self = .array(elements)
            return
        }
        if let object = try? decoder.container(keyedBy: AnyCodingKey.self) {
            var members: [String: JSONValue] = [:]
            for key in object.allKeys {
                members[key.stringValue] = try object.decode(JSONValue.self, forKey: key)
            }
            self = .object(members)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
        } else if let value = try? single.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? single.decode(Double.self) {
            self = .number(value)
        } else {
            self = .string(try single.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        case .bool(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .number(let value):
            var container = encoder.singleValueContainer()
            if value.rounded() == value && abs(value) < 1e15 {
                try container.encode(Int64(value))
            } else {
                try container.encode(value)
            }
        case .string(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .array(let values):
            var container = encoder.unkeyedContainer()
            for value in values { try container.encode(value) }
        case .object(let members):
            var container = encoder.container(keyedBy: AnyCodingKey.self)
            for (key, value) in members { try container.encode(value, forKey: AnyCodingKey(key)) }
        }
    }
}

/// A coding key for any string or index, used for dictionaries and array positions.
struct AnyCodingKey: CodingKey, Hashable {
    var stringValue: String
    var intValue: Int?

    init(_ string: String) {
        self.stringValue = string
        self.intValue = nil
    }

    init(index: Int) {
        self.stringValue = "\(index)"
        self.intValue = index
    }

    init?(stringValue: String) { self.init(stringValue) }
    init?(intValue: Int) { self.init(index: intValue) }
}
