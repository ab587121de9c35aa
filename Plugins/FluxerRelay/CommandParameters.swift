/// The types of the client commands' parameters (Centrifugal `client.proto`), checked before a
/// command runs, so `"limit": "ten"` is error 107 naming `history.limit` rather than a default
/// silently used. Parameters not listed here (ones a newer SDK may send) are ignored, and
/// `null` counts as absent, as the protocol's JSON mapping of Protobuf has it.
enum CommandParameters {
    enum Kind {
        case string
        case bool
        /// A non-negative integer that fits 64 bits (offsets).
        case unsigned
        /// An integer that fits 32 bits, sign allowed (`limit`).
        case integer
        /// Any JSON object.
        case object
        /// A stream position: `{ "offset": unsigned, "epoch": string }`.
        case position
        /// The connect command's `subs`: an object of channel to
        /// `{ "recover": bool, "offset": unsigned, "epoch": string }`.
        case subscriptionRecovery
    }

    static let kinds: [String: [String: Kind]] = [
        "connect": ["token": .string, "name": .string, "version": .string, "subs": .subscriptionRecovery],
        "subscribe": [
            "channel": .string, "token": .string, "recover": .bool, "epoch": .string, "offset": .unsigned,
            "positioned": .bool, "recoverable": .bool, "join_leave": .bool,
        ],
        "unsubscribe": ["channel": .string],
        "publish": ["channel": .string],
        "presence": ["channel": .string],
        "presence_stats": ["channel": .string],
        "history": ["channel": .string, "limit": .integer, "since": .position, "reverse": .bool],
        "refresh": ["token": .string],
        "sub_refresh": ["channel": .string, "token": .string],
        "rpc": ["method": .string],
    ]

    /// The first parameter of `method` whose value has the wrong type, as a bad request naming
    /// it (`history.limit`), or nil.
    static func typeError(method: String, params: WireJSON) -> RelayError? {
        guard let kinds = Self.kinds[method], case .object(let members) = params else { return nil }
        for (name, value) in members.sorted(by: { $0.key < $1.key }) {
            guard let kind = kinds[name] else { continue }
            if let problem = Self.problem(value, kind, path: "\(method).\(name)") {
                return RelayError.badRequest.with(message: "bad request: \(problem)")
            }
        }
        return nil
    }

    private static func problem(_ value: WireJSON, _ kind: Kind, path: String) -> String? {
        if case .null = value { return nil }
        switch kind {
        case .string:
            if case .string = value { return nil }
            return "\(path) must be a string, found \(value.typeName)"
        case .bool:
            if case .bool = value { return nil }
            return "\(path) must be true or false, found \(value.typeName)"
        case .unsigned:
            if value.unsignedValue != nil { return nil }
            return "\(path) must be an integer from 0 to 18446744073709551615, found \(value.typeName)"
        case .integer:
            if let number = value.intValue, Int(Int32.min)...Int(Int32.max) ~= number { return nil }
            return "\(path) must be an integer (32 bits), found \(value.typeName)"
        case .object:
            if case .object = value { return nil }
            return "\(path) must be an object, found \(value.typeName)"
        case .position:
            guard case .object(let members) = value else { return "\(path) must be an object, found \(value.typeName)" }
            if let offset = members["offset"], let problem = Self.problem(offset, .unsigned, path: "\(path).offset") {
                return problem
            }
            if let epoch = members["epoch"], let problem = Self.problem(epoch, .string, path: "\(path).epoch") {
                return problem
            }
            return nil
        case .subscriptionRecovery:
            guard case .object(let channels) = value else {
                return "\(path) must be an object, found \(value.typeName)"
            }
            for (channel, entry) in channels.sorted(by: { $0.key < $1.key }) {
                let entryPath = "\(path).\(channel)"
                guard case .object(let members) = entry else {
                    return "\(entryPath) must be an object, found \(entry.typeName)"
                }
                if let recover = members["recover"],
                    let problem = Self.problem(recover, .bool, path: "\(entryPath).recover")
                {
                    return problem
                }
                if let problem = Self.problem(entry, .position, path: entryPath) { return problem }
            }
            return nil
        }
    }
}

extension WireJSON {
    /// What a value is, for error messages: `a string ("ten")`, `a number (1.5)`.
    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return "a boolean (\(value))"
        case .number(let text): return "a number (\(text.prefix(24)))"
        case .string(let text): return "a string (\"\(text.prefix(24))\")"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}
