/// One client command as the dispatcher runs it, whichever format it came in: the id, the
/// method and its parameters under the protocol's field names (`client.proto`).
///
/// The JSON format's parameters are its object; the Protobuf format's are carried over into
/// the same shape (``RelayCommand/decode(protobuf:)``), so one dispatcher serves both.
struct RelayCommand {
    /// The command's id; replies carry it, and a command with id 0 wants no reply.
    var id: UInt64
    /// The method, in the protocol's name (`presence_stats`).
    var method: String
    /// The parameters, an object.
    var params: WireJSON
    /// What is wrong with a parameter that passed decoding (a Protobuf `data` that is not JSON),
    /// answered as the parameter type checks are; nil when nothing is.
    var parameterError: RelayError? = nil

    /// What a client's encoded command turned out to be.
    enum Decoded {
        case command(RelayCommand)
        /// An empty command: the client's pong, heard and nothing else.
        case pong
        /// A command that says which id it has but not what it wants: answered with this error.
        case invalid(id: UInt64, RelayError)
        /// Not a command of the format: the connection is closed with 3501 and this reason.
        case malformed(String)
    }

    /// Decodes one JSON command (one line of a text frame).
    static func decode(json line: [UInt8]) -> Decoded {
        let command: WireJSON
        do {
            command = try WireJSON.parse(line)
        } catch {
            return .malformed("bad request: \(error)")
        }
        guard case .object(let members) = command else {
            return .malformed("bad request: a command is a JSON object")
        }
        if members.isEmpty { return .pong }
        let id = members["id"]?.unsignedValue ?? 0
        let methods = members.keys.filter { $0 != "id" }
        guard methods.count == 1, let method = methods.first, let params = members[method] else {
            return .invalid(
                id: id,
                RelayError.badRequest.with(message: "bad request: a command has exactly one method")
            )
        }
        guard case .object = params else {
            return .invalid(id: id, RelayError.badRequest.with(message: "bad request: \(method) must be an object"))
        }
        return .command(RelayCommand(id: id, method: method, params: params))
    }
}
