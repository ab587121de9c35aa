public import NIOCore

/// A reply value, covering the RESP2 and RESP3 types.
///
/// A top-level error reply fails the command's future with ``RedisServerError``; an error nested
/// inside an aggregate (for example one command's failure in an `EXEC` reply) is kept as
/// ``error(_:)``.
public enum RESPValue: Sendable {
    /// A simple string (`+OK`).
    case simpleString(ByteBuffer)
    /// A bulk string; also a RESP3 verbatim string, without its `txt:` format prefix.
    case bulkString(ByteBuffer)
    /// An integer.
    case integer(Int64)
    /// A RESP3 double.
    case double(Double)
    /// A RESP3 boolean.
    case boolean(Bool)
    /// A RESP3 big number, as its decimal digits.
    case bigNumber(String)
    /// A RESP2 null bulk string or null array, or the RESP3 null.
    case null
    /// An array; also a RESP3 set.
    case array([RESPValue])
    /// A RESP3 map, in the order the server sent it.
    case map([(key: RESPValue, value: RESPValue)])
    /// A RESP3 push frame (pub/sub messages and confirmations).
    case push([RESPValue])
    /// An error nested inside an aggregate.
    case error(RedisServerError)

    /// A simple or bulk string as UTF-8; an integer, double or big number rendered as text.
    public var string: String? {
        switch self {
        case .simpleString(let buffer), .bulkString(let buffer):
            return String(buffer: buffer)
        case .integer(let value):
            return String(value)
        case .double(let value):
            return String(value)
        case .bigNumber(let value):
            return value
        default:
            return nil
        }
    }

    /// The bytes of a simple or bulk string.
    public var buffer: ByteBuffer? {
        switch self {
        case .simpleString(let buffer), .bulkString(let buffer):
            return buffer
        default:
            return nil
        }
    }

    /// An integer, or a simple or bulk string holding a decimal integer.
    public var int64: Int64? {
        switch self {
        case .integer(let value):
            return value
        case .simpleString(let buffer), .bulkString(let buffer):
            return Int64(String(buffer: buffer))
        default:
            return nil
        }
    }

    /// The elements of an array or push frame, or a map flattened to key, value, key, value...
    public var array: [RESPValue]? {
        switch self {
        case .array(let values), .push(let values):
            return values
        case .map(let pairs):
            return pairs.flatMap { [$0.key, $0.value] }
        default:
            return nil
        }
    }

    /// Whether this is a null.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The value for `key` in a map, or in an array of alternating keys and values (RESP2).
    public subscript(key: String) -> RESPValue? {
        guard let elements = self.array, elements.count % 2 == 0 else { return nil }
        var index = 0
        while index < elements.count {
            if elements[index].string == key { return elements[index + 1] }
            index += 2
        }
        return nil
    }
}
