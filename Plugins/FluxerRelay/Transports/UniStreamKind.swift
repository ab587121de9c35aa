import NIOCore

/// The two uni-directional HTTP transports, as Centrifugo has them: the client sends its
/// connect request with the HTTP request and then only receives, one JSON `Push` per message.
enum UniStreamKind: Sendable {
    /// Server-Sent Events at `/connection/uni_sse`: `GET` with the connect request as JSON in
    /// the `cf_connect` query parameter (what a browser's `EventSource` can send), or `POST`
    /// with it as the body; each push is an event, `data: <push>\n\n`.
    case sse
    /// HTTP streaming at `/connection/uni_http_stream`: `POST` with the connect request as the
    /// body; each push is a line, `<push>\n`.
    case httpStream

    /// The paths the relay answers them at (after the route's rewrite).
    static let ssePath = "/connection/uni_sse"
    static let httpStreamPath = "/connection/uni_http_stream"

    /// The transport answering `path`, if any.
    init?(path: String) {
        switch path {
        case Self.ssePath: self = .sse
        case Self.httpStreamPath: self = .httpStream
        default: return nil
        }
    }

    /// The transport's name in logs and errors (Centrifugo's).
    var name: String {
        switch self {
        case .sse: return "uni_sse"
        case .httpStream: return "uni_http_stream"
        }
    }

    /// The response's content type.
    var contentType: String {
        switch self {
        case .sse: return "text/event-stream; charset=utf-8"
        case .httpStream: return "application/json"
        }
    }

    /// What the stream starts with: Centrifugo's SSE sends an empty line first, so proxies and
    /// clients see the stream open before the first event.
    var opening: StaticString? {
        switch self {
        case .sse: return "\r\n"
        case .httpStream: return nil
        }
    }

    /// What goes before each message.
    var messagePrefix: StaticString? {
        switch self {
        case .sse: return "data: "
        case .httpStream: return nil
        }
    }

    /// What goes after each message.
    var messageSuffix: StaticString {
        switch self {
        case .sse: return "\n\n"
        case .httpStream: return "\n"
        }
    }

    /// The methods the transport takes, for the 405's detail.
    var methodsDetail: String {
        switch self {
        case .sse:
            return
                "uni_sse takes GET (the connect request as JSON in the cf_connect query parameter) or POST (as the body)"
        case .httpStream:
            return "uni_http_stream takes POST with the connect request as a JSON body"
        }
    }
}
