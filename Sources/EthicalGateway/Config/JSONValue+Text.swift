import Crypto
public import Foundation

extension JSONValue {
    /// The value as JSON text with sorted keys: indented by two spaces when `pretty` (how the
    /// admin API writes the config file), else compact. The same value always gives the same
    /// bytes.
    public func encoded(pretty: Bool) -> Data {
        var text = ""
        self.write(to: &text, indent: pretty ? 0 : nil)
        if pretty { text.append("\n") }
        return Data(text.utf8)
    }

    /// An entity tag for the value (a quoted SHA-256 prefix of its compact encoding): the same
    /// tag for the same content, whatever the key order or spacing it was written with.
    public var entityTag: String {
        let digest = SHA256.hash(data: self.encoded(pretty: false))
        return "\"" + digest.prefix(16).map { String(format: "%02x", $0) }.joined() + "\""
    }

    /// Appends the value; `indent` is the current depth when pretty-printing, `nil` for compact.
    private func write(to text: inout String, indent: Int?) {
        switch self {
        case .null: text.append("null")
        case .bool(let value): text.append(value ? "true" : "false")
        case .number(let value):
            if value.rounded() == value && abs(value) < 1e15 {
                text.append(String(Int64(value)))
            } else {
                text.append("\(value)")
            }
        case .string(let value): appendJSONString(value, to: &text)
        case .array(let elements):
            guard !elements.isEmpty else { return text.append("[]") }
            text.append("[")
            for (offset, element) in elements.enumerated() {
                if offset > 0 { text.append(",") }
                Self.newline(&text, indent.map { $0 + 1 })
                element.write(to: &text, indent: indent.map { $0 + 1 })
            }
            Self.newline(&text, indent)
            text.append("]")
        case .object(let members):
            guard !members.isEmpty else { return text.append("{}") }
            text.append("{")
            for (offset, key) in members.keys.sorted().enumerated() {
                if offset > 0 { text.append(",") }
                Self.newline(&text, indent.map { $0 + 1 })
                appendJSONString(key, to: &text)
                text.append(indent == nil ? ":" : ": ")
                members[key]!.write(to: &text, indent: indent.map { $0 + 1 })
            }
            Self.newline(&text, indent)
            text.append("}")
        }
    }

    private static func newline(_ text: inout String, _ indent: Int?) {
        guard let indent else { return }
        text.append("\n")
        text.append(String(repeating: "  ", count: indent))
    }
}
