import Crypto
import Foundation
public import NIOHTTP1

/// The server side of the RFC 6455 opening handshake, with subprotocol selection and
/// permessage-deflate negotiation.
public enum WebSocketHandshake {
    /// What the server agreed to.
    public struct Accepted {
        /// The `101` head to send.
        public var head: HTTPResponseHead
        /// The subprotocol echoed in `Sec-WebSocket-Protocol`, if any.
        public var subprotocol: String?
        /// The compression both sides use, if the client offered it and the server allows it.
        public var deflate: PerMessageDeflate?
    }

    public enum Outcome {
        case accept(Accepted)
        /// Not a valid WebSocket request: the status and why.
        case refuse(HTTPResponseStatus, String)
    }

    /// Checks a request for a WebSocket upgrade and builds the answer.
    ///
    /// - Parameters:
    ///   - subprotocols: the subprotocols the server speaks, in its order of preference; the
    ///     first one the client also asked for is chosen.
    ///   - permessageDeflate: whether to accept a permessage-deflate offer.
    ///   - requireClientNoContextTakeover: see ``PerMessageDeflate/negotiate(offers:requireClientNoContextTakeover:)``.
    public static func evaluate(
        _ head: HTTPRequestHead,
        subprotocols: [String] = [],
        permessageDeflate: Bool,
        requireClientNoContextTakeover: Bool = false
    ) -> Outcome {
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
        let requested = headers[canonicalForm: "sec-websocket-protocol"].map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        let subprotocol = subprotocols.first { requested.contains($0) }
        if let subprotocol { response.add(name: "sec-websocket-protocol", value: subprotocol) }
        var deflate: PerMessageDeflate?
        if permessageDeflate {
            deflate = PerMessageDeflate.negotiate(
                offers: headers["sec-websocket-extensions"],
                requireClientNoContextTakeover: requireClientNoContextTakeover
            )
            if let deflate { response.add(name: "sec-websocket-extensions", value: deflate.responseHeaderValue) }
        }
        return .accept(
            Accepted(
                head: HTTPResponseHead(version: head.version, status: .switchingProtocols, headers: response),
                subprotocol: subprotocol,
                deflate: deflate
            )
        )
    }

    /// `base64(SHA-1(key + GUID))`.
    public static func acceptValue(for key: String) -> String {
        let digest = Insecure.SHA1.hash(data: Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        return Data(digest).base64EncodedString()
    }
}
