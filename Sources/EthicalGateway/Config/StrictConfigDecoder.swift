/// A `Decoder` over a ``JSONValue`` that is strict where `JSONDecoder` is lenient.
///
/// - Unknown keys are errors: every object remembers which keys the decoded type asked for, and
///   the keys nobody asked for are reported once decoding ends.
/// - Type errors name the JSON path and say what was expected and what was found.
/// - Errors inside ``Lenient`` values are collected rather than thrown, so one run reports every
///   broken listener, route and backend at once.
struct StrictConfigDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    let session: ConfigDecodingSession
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(value: JSONValue, codingPath: [any CodingKey] = [], session: ConfigDecodingSession) {
        self.value = value
        self.codingPath = codingPath
        self.session = session
    }

    /// Decodes `type` from `value`, returning the value and every issue found.
    ///
    /// - Parameter basePath: where `value` sits in its file, e.g. `$.backends.site.config`.
    static func decode<T: Decodable>(
        _ type: T.Type,
        from value: JSONValue,
        basePath: String = "$"
    ) -> (value: T?, issues: [ConfigIssue]) {
        let session = ConfigDecodingSession(basePath: basePath)
        let decoder = StrictConfigDecoder(value: value, session: session)
        do {
            let decoded = try T(from: decoder)
            return (decoded, session.allIssues())
        } catch {
            session.record(error, decodingValueAt: basePath)
            return (nil, session.allIssues())
        }
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = self.value else {
            throw DecodingError.typeMismatch(
                [String: Any].self,
                .init(
                    codingPath: self.codingPath,
                    debugDescription: "expected an object, found \(self.value.kindDescription)"
                )
            )
        }
        let path = self.session.path(self.codingPath)
        self.session.registerObject(path: path, keys: Array(members.keys))
        return KeyedDecodingContainer(
            StrictKeyedContainer<Key>(members: members, codingPath: self.codingPath, path: path, session: self.session)
        )
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let elements) = self.value else {
            throw DecodingError.typeMismatch(
                [Any].self,
                .init(
                    codingPath: self.codingPath,
                    debugDescription: "expected an array, found \(self.value.kindDescription)"
                )
            )
        }
        return StrictUnkeyedContainer(elements: elements, codingPath: self.codingPath, session: self.session)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        StrictSingleValueContainer(value: self.value, codingPath: self.codingPath, session: self.session)
    }
}

private struct StrictKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let codingPath: [any CodingKey]
    let path: String
    let session: ConfigDecodingSession

    var allKeys: [Key] { self.members.keys.sorted().compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool {
        self.session.requested(key: key.stringValue, inObjectAt: self.path)
        return self.members[key.stringValue] != nil
    }

    private func member(_ key: Key) throws -> JSONValue {
        self.session.requested(key: key.stringValue, inObjectAt: self.path)
        guard let value = self.members[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: self.codingPath, debugDescription: "missing key"))
        }
        return value
    }

    private func decoder(for key: Key, value: JSONValue) -> StrictConfigDecoder {
        StrictConfigDecoder(value: value, codingPath: self.codingPath + [key], session: self.session)
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        let value = try self.member(key)
        return value == .null
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let value = try self.member(key)
        return try T(from: self.decoder(for: key, value: value))
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        self.session.requested(key: key.stringValue, inObjectAt: self.path)
        guard let value = self.members[key.stringValue], value != .null else { return nil }
        return try T(from: self.decoder(for: key, value: value))
    }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type,
        forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try self.decoder(for: key, value: self.member(key)).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try self.decoder(for: key, value: self.member(key)).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        StrictConfigDecoder(value: .object(self.members), codingPath: self.codingPath, session: self.session)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        try self.decoder(for: key, value: self.member(key))
    }
}

private struct StrictUnkeyedContainer: UnkeyedDecodingContainer {
    let elements: [JSONValue]
    let codingPath: [any CodingKey]
    let session: ConfigDecodingSession
    var currentIndex = 0

    init(elements: [JSONValue], codingPath: [any CodingKey], session: ConfigDecodingSession) {
        self.elements = elements
        self.codingPath = codingPath
        self.session = session
    }

    var count: Int? { self.elements.count }
    var isAtEnd: Bool { self.currentIndex >= self.elements.count }

    private mutating func nextDecoder() throws -> StrictConfigDecoder {
        guard !self.isAtEnd else {
            throw DecodingError.valueNotFound(
                Any.self,
                .init(codingPath: self.codingPath, debugDescription: "expected more elements in the array")
            )
        }
        let decoder = StrictConfigDecoder(
            value: self.elements[self.currentIndex],
            codingPath: self.codingPath + [AnyCodingKey(index: self.currentIndex)],
            session: self.session
        )
        self.currentIndex += 1
        return decoder
    }

    mutating func decodeNil() throws -> Bool {
        guard !self.isAtEnd, self.elements[self.currentIndex] == .null else { return false }
        self.currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try T(from: self.nextDecoder())
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try self.nextDecoder().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try self.nextDecoder().unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        try self.nextDecoder()
    }
}

private struct StrictSingleValueContainer: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [any CodingKey]
    let session: ConfigDecodingSession

    private func mismatch(_ expected: String) -> DecodingError {
        DecodingError.typeMismatch(
            Any.self,
            .init(
                codingPath: self.codingPath,
                debugDescription: "expected \(expected), found \(self.value.kindDescription)"
            )
        )
    }

    func decodeNil() -> Bool { self.value == .null }

    func decode(_ type: Bool.Type) throws -> Bool {
        guard case .bool(let bool) = self.value else { throw self.mismatch("a boolean") }
        return bool
    }

    func decode(_ type: String.Type) throws -> String {
        guard case .string(let string) = self.value else { throw self.mismatch("a string") }
        return string
    }

    func decode(_ type: Double.Type) throws -> Double {
        guard case .number(let number) = self.value else { throw self.mismatch("a number") }
        return number
    }

    func decode(_ type: Float.Type) throws -> Float { Float(try self.decode(Double.self)) }

    private func integer<I: FixedWidthInteger>(_ type: I.Type) throws -> I {
        guard case .number(let number) = self.value, number.rounded() == number,
            let integer = I(exactly: number)
        else {
            throw self.mismatch("an integer between \(I.min) and \(I.max)")
        }
        return integer
    }

    func decode(_ type: Int.Type) throws -> Int { try self.integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try self.integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try self.integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try self.integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try self.integer(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try self.integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try self.integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try self.integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try self.integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try self.integer(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try T(from: StrictConfigDecoder(value: self.value, codingPath: self.codingPath, session: self.session))
    }
}
