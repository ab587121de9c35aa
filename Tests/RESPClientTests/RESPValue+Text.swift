import NIOCore
import RESPClient

extension RESPValue {
    /// A canonical rendering, to compare replies in tests.
    var text: String {
        switch self {
        case .simpleString(let buffer): return "+\(String(buffer: buffer))"
        case .bulkString(let buffer): return "$\(String(buffer: buffer))"
        case .integer(let value): return ":\(value)"
        case .double(let value): return ",\(value)"
        case .boolean(let value): return "#\(value)"
        case .bigNumber(let value): return "(\(value)"
        case .null: return "_"
        case .array(let values): return "[" + values.map(\.text).joined(separator: " ") + "]"
        case .map(let pairs): return "{" + pairs.map { "\($0.key.text)=\($0.value.text)" }.joined(separator: " ") + "}"
        case .push(let values): return ">[" + values.map(\.text).joined(separator: " ") + "]"
        case .error(let error): return "-\(error.message)"
        }
    }
}
