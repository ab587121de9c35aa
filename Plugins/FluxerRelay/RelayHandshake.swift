import NIOHTTP1
import WebSocketCore

/// The relay's opening handshake: the WebSocket layer's, with the Centrifugal JSON subprotocol.
enum RelayHandshake {
    /// The subprotocol of the protocol's JSON format, echoed when a client asks for it.
    static let jsonSubprotocol = "centrifuge-json"

    static func evaluate(_ head: HTTPRequestHead, permessageDeflate: Bool) -> WebSocketHandshake.Outcome {
        // Deflate is accepted with client_no_context_takeover, so an idle relay connection holds
        // no decompressor; the relay sends uncompressed (publications are framed once for all).
        let outcome = WebSocketHandshake.evaluate(
            head,
            subprotocols: [Self.jsonSubprotocol],
            permessageDeflate: permessageDeflate,
            requireClientNoContextTakeover: true
        )
        if case .accept(let accepted) = outcome, accepted.subprotocol == nil,
            head.headers[canonicalForm: "sec-websocket-protocol"].contains(where: {
                $0.trimmingCharacters(in: .whitespaces) == "centrifuge-protobuf"
            })
        {
            return .refuse(.badRequest, "the Protobuf format is not supported yet; use the JSON format")
        }
        return outcome
    }
}
