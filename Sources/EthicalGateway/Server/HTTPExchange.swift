import NIOCore
import NIOHTTP1

/// The data of one request and its response as ``GatewayHTTPHandler`` serves them: the head,
/// the route and backend, the body on its way. Where the exchange stands (request received or
/// discarded, response started, what happens after it) is ``HTTPConnectionStateMachine``'s.
final class HTTPExchange {
    let id: UInt64
    let head: HTTPRequestHead
    let requestID: String
    /// The request announced a body (`Transfer-Encoding`, or a `Content-Length` other than 0).
    let expectsBody: Bool
    var route: CompiledRoute?
    var request: GatewayRequest?
    var receiver: (any RequestBodyReceiver)?
    /// Body parts that arrived before the backend was ready for them.
    var pendingBody: [ByteBuffer] = []
    var maxBodyBytes = Int.max
    var bodyBytes = 0
    var status: UInt = 0
    /// The request is an HTTP/2 extended CONNECT for a WebSocket (RFC 8441), presented as an
    /// HTTP/1.1 WebSocket opening: its stream may become the WebSocket.
    var isExtendedConnect = false
    /// An upgrade the backend asked for before the request's end had arrived.
    var pendingUpgrade: (HTTPResponseHead, (any Channel) -> Void)?
    /// The in-flight count of the runtime the exchange started on (on this loop): what a reload
    /// waits for before it retires that runtime's backends.
    let inFlight: InFlightCounter?
    /// When the request head arrived.
    let startedAt = NIODeadline.now()
    /// Response body bytes written.
    var responseBytes = 0
    /// Where the exchange is logged (the access log of the runtime it started on).
    var accessLog: AccessLogWriter?
    /// The upstream a backend named (``ResponseWriter/noteUpstream(_:)``).
    var upstream: String?
    /// Why the auth filter refused the token.
    var refusalCategory: String?
    /// The request's W3C trace context.
    var trace: TraceContext?
    /// The request's server span, when `tracing` is configured.
    var span: RequestSpan?
    /// Whether a filter holds the response whole before it is sent (``Filter/responseBufferLimit(for:)``).
    var responseBuffering: ResponseBuffering = .undecided
    /// Whether a filter holds the request body whole before it decides (``Filter/requestBufferLimit(for:)``).
    var requestBuffering: RequestBuffering = .streaming
    /// How long a held request body may go without a byte (`limits.idleTimeoutSeconds`).
    var bodyIdleTimeout = TimeAmount.nanoseconds(60_000_000_000)
    /// The check that answers a held body which stopped arriving.
    var heldBodyTimer: Scheduled<Void>?

    init(id: UInt64, head: HTTPRequestHead, requestID: String, expectsBody: Bool, inFlight: InFlightCounter?) {
        self.inFlight = inFlight
        self.id = id
        self.head = head
        self.requestID = requestID
        self.expectsBody = expectsBody
    }
}

@available(*, unavailable)
extension HTTPExchange: Sendable {}

/// Where a request body held for a filter stands.
enum RequestBuffering {
    /// The body goes to the backend as it arrives (or waits in ``HTTPExchange/pendingBody``).
    case streaming
    /// The body is being read whole for the filter at `filterIndex` of the route, at most
    /// `limit` bytes; `lastProgress` is when the last part (or the head) arrived, for the timer.
    case holding(filterIndex: Int, body: ByteBuffer, limit: Int, lastProgress: NIODeadline)
    /// The whole body is in ``GatewayRequest/heldBody``: later filters and the backend get it from there.
    case held
}

/// Where a response held for filters stands.
enum ResponseBuffering {
    /// The backend has not written the head yet.
    case undecided
    /// The head and the body so far are held; `limit` is the most body bytes the filters accept.
    case holding(head: HTTPResponseHead, body: ByteBuffer, limit: Int)
    /// The response goes out as written (no filter holds it, or it was held and released).
    case passing
}
