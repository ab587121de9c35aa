import Crypto
import Foundation
import NIOHTTP1

/// The server side of the RFC 6455 opening handshake.
enum WebSocketHandshake {
    /// The subprotocol of the protocol's JSON format, echoed when a client asks for it.
    static let jsonSubprotocol = "centrifuge-json"

    enum Outcome {
        /// The `101` head to send.
        case accept(HTTPResponseHead)
        /// Not a valid WebSocket request: the status and why.
        case refuse(HTTPResponseStatus, String)
    }

    static func evaluate(_ head: HTTPRequestHead) -> Outcome {
        let headers = head.headers
        guard head.method == .GET else { return .refuse(.methodNotAllowed, "a WebSocket handshake is a GET") }
        let upgrade = headers[canonicalForm: "upgrade"].map { $0.lowercased() }
        guard upgrade.contains("websocket") else {
            return .refuse(.upgradeRequired, "this endpoint speaks WebSocket: send Upgrade: websocket")
        }
        guard headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "upgrade" }) else {
            return .refuse(.badRequest, "a WebSocket handshake needs Connection: Upgrade")
        }
        guard headers.first(name: "sec-websocket-version") == "13" else {
            return .refuse(.upgradeRequired, "only WebSocket version 13 is supported")
        }
        guard let key = headers.first(name: "sec-websocket-key"),
            let decoded = Data(base64Encoded: key.trimmingCharacters(in: .whitespaces)), decoded.count == 16
        else {
            return .refuse(.badRequest, "Sec-WebSocket-Key must be 16 bytes in base64")
        }
        var response = HTTPHeaders()
        response.add(name: "upgrade", value: "websocket")
        response.add(name: "connection", value: "upgrade")
        response.add(name: "sec-websocket-accept", value: Self.acceptValue(for: key))
        let requested = headers[canonicalForm: "sec-websocket-protocol"].map { $0.trimmingCharacters(in: .whitespaces) }
        if requested.contains(Self.jsonSubprotocol) {
            response.add(name: "sec-websocket-protocol", value: Self.jsonSubprotocol)
        } else if requested.contains("centrifuge-protobuf") {
            return .refuse(.badRequest, "the Protobuf format is not supported yet; use the JSON format")
        }
        return .accept(HTTPResponseHead(version: head.version, status: .switchingProtocols, headers: response))
    }

    /// `base64(SHA-1(key + GUID))`.
    static func acceptValue(for key: String) -> String {
        let digest = Insecure.SHA1.hash(data: Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        return Data(digest).base64EncodedString()
    }
}
