public import NIOCore

/// An argument of a command: `RESPArgument("SET")`, string or integer literals, or bytes.
///
/// ```swift
/// connection.send("SET", ["key", RESPArgument(buffer), "PX", 500])
/// ```
public struct RESPArgument: Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    enum Storage: Sendable {
        case string(String)
        case bytes(ByteBuffer)
    }

    let storage: Storage

    /// An argument holding the UTF-8 bytes of `string`.
    public init(_ string: String) {
        self.storage = .string(string)
    }

    /// An argument holding `bytes` as they are.
    public init(_ bytes: ByteBuffer) {
        self.storage = .bytes(bytes)
    }

    /// An argument holding `int` in decimal.
    public init(_ int: Int) {
        self.storage = .string(String(int))
    }

    /// An argument holding `value` in decimal.
    public init(_ value: UInt64) {
        self.storage = .string(String(value))
    }

    public init(stringLiteral value: String) {
        self.init(value)
    }

    public init(integerLiteral value: Int) {
        self.init(value)
    }

    /// The number of bytes the argument sends.
    var byteCount: Int {
        switch self.storage {
        case .string(let string): return string.utf8.count
        case .bytes(let bytes): return bytes.readableBytes
        }
    }
}

extension ByteBuffer {
    /// Writes a command as a RESP array of bulk strings.
    mutating func writeRESPCommand(_ command: String, _ arguments: [RESPArgument]) {
        self.writeString("*\(arguments.count + 1)\r\n$\(command.utf8.count)\r\n")
        self.writeString(command)
        self.writeStaticString("\r\n")
        for argument in arguments {
            self.writeString("$\(argument.byteCount)\r\n")
            switch argument.storage {
            case .string(let string): self.writeString(string)
            case .bytes(let bytes): self.writeImmutableBuffer(bytes)
            }
            self.writeStaticString("\r\n")
        }
    }
}
