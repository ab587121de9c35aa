/// A strict RFC 8259 parser producing a ``JSONValue``.
///
/// Foundation's `JSONDecoder` keeps the first of two equal keys, while most other JSON tools
/// keep the last: a config that says `"auth"` twice means different things to different
/// readers, so a duplicate key is an error here, with its JSON path. Numbers that do not fit a
/// 64-bit float (`1e400`) are errors with their path too, instead of a type mismatch from deep
/// inside Foundation. Every such issue is reported at once; a syntax error stops the parse and
/// names its line and column.
struct JSONParser {
    /// Deeper nesting is refused: configs come through the admin API too, and recursion depth
    /// must not be the client's to choose.
    static let maximumDepth = 256

    /// How the message of a duplicate-key issue begins, for callers that tell it from the others.
    static let duplicateKeyMessage = "duplicate key"

    private let bytes: [UInt8]
    private var position = 0
    private var path: [AnyCodingKey] = []
    private var issues: [ConfigIssue] = []

    private struct SyntaxError: Error {
        var message: String
        var position: Int
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Parses `bytes` as one JSON document.
    ///
    /// - Throws: ``ConfigValidationError`` with every duplicate key and out-of-range number, or
    ///   with the first syntax error.
    static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        do {
            parser.skipWhitespace()
            let value = try parser.parseValue(depth: 0)
            parser.skipWhitespace()
            if parser.position < bytes.count {
                throw SyntaxError(message: "unexpected text after the JSON value", position: parser.position)
            }
            guard parser.issues.isEmpty else { throw ConfigValidationError(parser.issues) }
            return value
        } catch let error as SyntaxError {
            let (line, column) = parser.lineAndColumn(of: error.position)
            throw ConfigValidationError([
                ConfigIssue(
                    path: "$",
                    message: "the file is not valid JSON: \(error.message) at line \(line), column \(column)"
                )
            ])
        }
    }

    private func lineAndColumn(of offset: Int) -> (Int, Int) {
        var line = 1
        var lineStart = 0
        for index in 0..<min(offset, self.bytes.count) where self.bytes[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        return (line, offset - lineStart + 1)
    }

    private var currentPath: String { jsonPath(self.path) }

    private mutating func skipWhitespace() {
        while self.position < self.bytes.count {
            switch self.bytes[self.position] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): self.position += 1
            default: return
            }
        }
    }

    private func peek() -> UInt8? {
        self.position < self.bytes.count ? self.bytes[self.position] : nil
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws {
        guard self.peek() == byte else {
            throw SyntaxError(message: "expected \(what)", position: self.position)
        }
        self.position += 1
    }

    private mutating func parseValue(depth: Int) throws -> JSONValue {
        guard let byte = self.peek() else {
            throw SyntaxError(message: "unexpected end of the document", position: self.position)
        }
        switch byte {
        case UInt8(ascii: "{"): return try self.parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try self.parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try self.parseString())
        case UInt8(ascii: "t"): return try self.parseLiteral("true", .bool(true))
        case UInt8(ascii: "f"): return try self.parseLiteral("false", .bool(false))
        case UInt8(ascii: "n"): return try self.parseLiteral("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try self.parseNumber()
        default: throw SyntaxError(message: "expected a value", position: self.position)
        }
    }

    private mutating func parseLiteral(_ literal: String, _ value: JSONValue) throws -> JSONValue {
        for expected in literal.utf8 {
            guard self.peek() == expected else {
                throw SyntaxError(message: "expected \(literal)", position: self.position)
            }
            self.position += 1
        }
        return value
    }

    private mutating func parseObject(depth: Int) throws -> JSONValue {
        guard depth <= Self.maximumDepth else {
            throw SyntaxError(message: "nesting deeper than \(Self.maximumDepth) levels", position: self.position)
        }
        self.position += 1
        var members: [String: JSONValue] = [:]
        self.skipWhitespace()
        if self.peek() == UInt8(ascii: "}") {
            self.position += 1
            return .object(members)
        }
        while true {
            self.skipWhitespace()
            guard self.peek() == UInt8(ascii: "\"") else {
                throw SyntaxError(message: "expected a key in double quotes", position: self.position)
            }
            let key = try self.parseString()
            self.skipWhitespace()
            try self.expect(UInt8(ascii: ":"), "':' after a key")
            self.skipWhitespace()
            self.path.append(AnyCodingKey(key))
            let value = try self.parseValue(depth: depth)
            if members[key] != nil {
                self.issues.append(
                    ConfigIssue(
                        path: self.currentPath,
                        message: "\(Self.duplicateKeyMessage) \"\(key)\": "
                            + "JSON tools disagree on which one counts; keep one"
                    )
                )
            } else {
                members[key] = value
            }
            self.path.removeLast()
            self.skipWhitespace()
            switch self.peek() {
            case UInt8(ascii: ","): self.position += 1
            case UInt8(ascii: "}"):
                self.position += 1
                return .object(members)
            default: throw SyntaxError(message: "expected ',' or '}' in an object", position: self.position)
            }
        }
    }

    private mutating func parseArray(depth: Int) throws -> JSONValue {
        guard depth <= Self.maximumDepth else {
            throw SyntaxError(message: "nesting deeper than \(Self.maximumDepth) levels", position: self.position)
        }
        self.position += 1
        var elements: [JSONValue] = []
        self.skipWhitespace()
        if self.peek() == UInt8(ascii: "]") {
            self.position += 1
            return .array(elements)
        }
        while true {
            self.skipWhitespace()
            self.path.append(AnyCodingKey(index: elements.count))
            elements.append(try self.parseValue(depth: depth))
            self.path.removeLast()
            self.skipWhitespace()
            switch self.peek() {
            case UInt8(ascii: ","): self.position += 1
            case UInt8(ascii: "]"):
                self.position += 1
                return .array(elements)
            default: throw SyntaxError(message: "expected ',' or ']' in an array", position: self.position)
            }
        }
    }

    private mutating func parseNumber() throws -> JSONValue {
        let start = self.position
        func digits() -> Int {
            let first = self.position
            while let byte = self.peek(), byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { self.position += 1 }
            return self.position - first
        }
        if self.peek() == UInt8(ascii: "-") { self.position += 1 }
        let integerStart = self.position
        guard digits() > 0 else { throw SyntaxError(message: "expected digits", position: self.position) }
        if self.bytes[integerStart] == UInt8(ascii: "0") && self.position - integerStart > 1 {
            throw SyntaxError(message: "a number must not have leading zeros", position: integerStart)
        }
        if self.peek() == UInt8(ascii: ".") {
            self.position += 1
            guard digits() > 0 else {
                throw SyntaxError(message: "expected digits after the decimal point", position: self.position)
            }
        }
        if self.peek() == UInt8(ascii: "e") || self.peek() == UInt8(ascii: "E") {
            self.position += 1
            if self.peek() == UInt8(ascii: "+") || self.peek() == UInt8(ascii: "-") { self.position += 1 }
            guard digits() > 0 else {
                throw SyntaxError(message: "expected digits in the exponent", position: self.position)
            }
        }
        let text = String(decoding: self.bytes[start..<self.position], as: UTF8.self)
        guard let number = Double(text), number.isFinite else {
            self.issues.append(
                ConfigIssue(
                    path: self.currentPath,
                    message: "the number \(CanonicalRequest.excerpt(text)) is out of range (at most about 1.8e308)"
                )
            )
            return .number(0)
        }
        return .number(number)
    }

    private mutating func parseString() throws -> String {
        self.position += 1
        var output: [UInt8] = []
        while true {
            guard let byte = self.peek() else {
                throw SyntaxError(message: "unterminated string", position: self.position)
            }
            self.position += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let string = String(validating: output, as: UTF8.self) else {
                    throw SyntaxError(message: "a string is not valid UTF-8", position: self.position - 1)
                }
                return string
            case UInt8(ascii: "\\"):
                try self.parseEscape(into: &output)
            case 0..<0x20:
                throw SyntaxError(
                    message: "a control character must be escaped in a string",
                    position: self.position - 1
                )
            default:
                output.append(byte)
            }
        }
    }

    private mutating func parseEscape(into output: inout [UInt8]) throws {
        guard let byte = self.peek() else { throw SyntaxError(message: "unterminated escape", position: self.position) }
        self.position += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(byte)
        case UInt8(ascii: "b"): output.append(0x08)
        case UInt8(ascii: "f"): output.append(0x0C)
        case UInt8(ascii: "n"): output.append(0x0A)
        case UInt8(ascii: "r"): output.append(0x0D)
        case UInt8(ascii: "t"): output.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try self.parseHex4()
            if (0xD800..<0xDC00).contains(scalar) {
                // A high surrogate must be followed by an escaped low one.
                guard self.peek() == UInt8(ascii: "\\"), self.position + 1 < self.bytes.count,
                    self.bytes[self.position + 1] == UInt8(ascii: "u")
                else { throw SyntaxError(message: "a lone UTF-16 surrogate", position: self.position) }
                self.position += 2
                let low = try self.parseHex4()
                guard (0xDC00..<0xE000).contains(low) else {
                    throw SyntaxError(message: "a lone UTF-16 surrogate", position: self.position)
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(scalar) {
                throw SyntaxError(message: "a lone UTF-16 surrogate", position: self.position)
            }
            output.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
        default:
            throw SyntaxError(
                message: "an unknown escape \\\(Character(Unicode.Scalar(byte)))",
                position: self.position - 1
            )
        }
    }

    private mutating func parseHex4() throws -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = self.peek() else {
                throw SyntaxError(message: "unterminated escape", position: self.position)
            }
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw SyntaxError(message: "expected four hex digits after \\u", position: self.position)
            }
            value = value << 4 | digit
            self.position += 1
        }
        return value
    }
}
