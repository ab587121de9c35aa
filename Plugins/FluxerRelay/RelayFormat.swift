/// The serialization format of one client connection, fixed by its opening handshake.
///
/// Both formats carry the same commands, replies and pushes of the Centrifugal client protocol
/// v2 (`client.proto`); only the encoding differs:
/// - ``json``: text frames, each holding one or more JSON objects separated by `\n`; `data`
///   fields are embedded JSON.
/// - ``protobuf``: binary frames, each holding one or more `Command` (client to server) or
///   `Reply` (server to client) messages, each prefixed with its length as a varint; `data`
///   fields are raw bytes.
enum RelayFormat: Sendable, Equatable {
    case json
    case protobuf

    /// The WebSocket subprotocol of the JSON format.
    static let jsonSubprotocol = "centrifuge-json"
    /// The WebSocket subprotocol of the Protobuf format.
    static let protobufSubprotocol = "centrifuge-protobuf"

    /// The format a client asked for: the subprotocol the handshake chose, else `format=protobuf`
    /// in the query (as Centrifugo accepts from SDKs that cannot set a subprotocol), else JSON.
    static func negotiated(subprotocol: String?, query: String?) -> RelayFormat {
        switch subprotocol {
        case Self.protobufSubprotocol?: return .protobuf
        case Self.jsonSubprotocol?: return .json
        default: break
        }
        let asksForProtobuf =
            query?.split(separator: "&").contains { $0 == "format=protobuf" } ?? false
        return asksForProtobuf ? .protobuf : .json
    }
}
