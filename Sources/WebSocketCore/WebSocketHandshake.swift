import Crypto
import Foundation
public import NIOHTTP1

/// The server side of the RFC 6455 opening handshake, with subprotocol selection and
/// permessage-deflate negotiation, over HTTP/1.1 and over HTTP/2 (RFC 8441).
///
/// Over HTTP/2 a WebSocket opens with an extended CONNECT (`:method CONNECT`,
/// `:protocol websocket`); the gateway's HTTP/2 layer presents it as the HTTP/1.1 opening
/// (`GET` with `Upgrade: websocket` and `Connection: upgrade`, version 2), so one evaluation
/// serves both. What differs on HTTP/2 (RFC 8441 section 5): there is no `Sec-WebSocket-Key`
/// and no `Sec-WebSocket-Accept`, and the answer is `200`, after which the frames flow as the
/// stream's DATA. `Sec-WebSocket-Version`, `-Protocol` and `-Extensions` mean what they mean
/// on HTTP/1.1.
public enum WebSocketHandshake {
    /// What the server agreed to.
    public struct Accepted {
        /// The head to send: `101` over HTTP/1.1, `200` over HTTP/2.
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
        let overHTTP2 = head.version.major == 2
        let upgrade = headers[canonicalForm: "upgrade"].map { $0.lowercased() }
        if overHTTP2 {
            // Only an extended CONNECT brings Upgrade over HTTP/2 (the HTTP/2 layer refuses the field).
            guard upgrade.contains("websocket") else {
                return .refuse(
                    .badRequest,
                    "this endpoint speaks WebSocket: over HTTP/2, open it with an extended CONNECT "
                        + "(RFC 8441: :method CONNECT, :protocol websocket)"
                )
            }
        } else {
            guard head.method == .GET else { return .refuse(.methodNotAllowed, "a WebSocket handshake is a GET") }
            guard upgrade.contains("websocket") else {
                return .refuse(.upgradeRequired, "this endpoint speaks WebSocket: send Upgrade: websocket")
            }
            guard headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "upgrade" }) else {
                return .refuse(.badRequest, "a WebSocket handshake needs Connection: Upgrade")
            }
        }
        guard headers.first(name: "sec-websocket-version") == "13" else {
            return .refuse(.upgradeRequired, "only WebSocket version 13 is supported")
        }
        var response = HTTPHeaders()
        if !overHTTP2 {
            guard let key = headers.first(name: "sec-websocket-key"),
                let decoded = Data(base64Encoded: key.trimmingCharacters(in: .whitespaces)), decoded.count == 16
            else {
                return .refuse(.badRequest, "Sec-WebSocket-Key must be 16 bytes in base64")
            }
            response.add(name: "upgrade", value: "websocket")
            response.add(name: "connection", value: "upgrade")
            response.add(name: "sec-websocket-accept", value: Self.acceptValue(for: key))
        }
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
                head: HTTPResponseHead(
                    version: head.version,
                    status: overHTTP2 ? .ok : .switchingProtocols,
                    headers: response
                ),
                subprotocol: subprotocol,
                deflate: deflate
            )
        )
    }

    /// A fresh `Sec-WebSocket-Key` (16 random bytes in base64), for a proxy that opens an
    /// HTTP/1.1 WebSocket upstream for a client that came over HTTP/2, which sends none.
    public static func makeClientKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString()
    }

    /// What a backend answers when the gateway could not switch the accepted request's
    /// connection (a response was already under way).
    public static let cannotSwitchDetail = "this request's connection cannot switch to WebSocket"

    /// `base64(SHA-1(key + GUID))`.
    public static func acceptValue(for key: String) -> String {
        let digest = Insecure.SHA1.hash(data: Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        return Data(digest).base64EncodedString()
    }
}
