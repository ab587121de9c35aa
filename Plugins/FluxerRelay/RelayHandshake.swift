import NIOHTTP1
import WebSocketCore

/// The relay's opening handshake: the WebSocket layer's, with the Centrifugal subprotocols.
enum RelayHandshake {
    static func evaluate(_ head: HTTPRequestHead, permessageDeflate: Bool) -> WebSocketHandshake.Outcome {
        // Deflate is accepted with client_no_context_takeover, so an idle relay connection holds
        // no decompressor; the relay sends uncompressed (publications are framed once for all).
        WebSocketHandshake.evaluate(
            head,
            subprotocols: [RelayFormat.jsonSubprotocol, RelayFormat.protobufSubprotocol],
            permessageDeflate: permessageDeflate,
            requireClientNoContextTakeover: true
        )
    }
}
