import NIOHPACK
import NIOHTTP1

/// What an HTTP/2 request's `CONNECT` asks for, and the one form the rest of the gateway sees
/// a WebSocket opening in.
///
/// An extended CONNECT (RFC 8441: `:method CONNECT`, `:protocol websocket`, with `:scheme`,
/// `:path` and `:authority`) is the HTTP/2 way to open a WebSocket. swift-nio-http2 accepts
/// `:protocol` only because the listener advertises `SETTINGS_ENABLE_CONNECT_PROTOCOL`, and
/// resets the stream with `PROTOCOL_ERROR` when `:path` or `:scheme` is missing or `:protocol`
/// comes with another method. The gateway turns what it accepts into the request an
/// HTTP/1.1 client opens a WebSocket with (`GET` with `Upgrade: websocket` and
/// `Connection: upgrade`), the way Envoy does, so routing (a route limited to `GET`), auth,
/// filters and backends see one kind of WebSocket request whichever HTTP version brought it.
/// The client cannot forge that form over HTTP/2: swift-nio-http2 refuses `Upgrade` and
/// `Connection` fields in an HTTP/2 request (RFC 9113 8.2.2).
enum HTTP2ExtendedConnect {
    enum Classification {
        /// Not a CONNECT: served as it is.
        case ordinary
        /// An extended CONNECT for a WebSocket, rewritten as the HTTP/1.1-style opening.
        case webSocket(HPACKHeaders)
        /// A CONNECT the gateway does not serve: answer with this status and why.
        case refused(HTTPResponseStatus, String)
    }

    /// The `:protocol` value that opens a WebSocket (RFC 8441 section 4).
    static let webSocketProtocol = "websocket"

    static func classify(_ fields: HPACKHeaders) -> Classification {
        guard fields.first(name: ":method") == "CONNECT" else { return .ordinary }
        guard let requested = fields.first(name: ":protocol") else {
            return .refused(
                .notImplemented,
                "this gateway is not a forward proxy and opens no CONNECT tunnels to host:port; over HTTP/2 it "
                    + "accepts CONNECT only as an extended CONNECT for a WebSocket (RFC 8441, :protocol websocket)"
            )
        }
        guard requested.lowercased() == Self.webSocketProtocol else {
            return .refused(
                .notImplemented,
                "extended CONNECT opens only WebSocket here (:protocol websocket); found :protocol "
                    + CanonicalRequest.excerpt(requested)
            )
        }
        var rewritten = HPACKHeaders()
        rewritten.reserveCapacity(fields.count + 1)
        for (name, value, indexing) in fields {
            switch name {
            case ":method": rewritten.add(name: name, value: "GET", indexing: indexing)
            case ":protocol": continue
            default: rewritten.add(name: name, value: value, indexing: indexing)
            }
        }
        rewritten.add(name: "upgrade", value: Self.webSocketProtocol)
        rewritten.add(name: "connection", value: "upgrade")
        return .webSocket(rewritten)
    }
}
