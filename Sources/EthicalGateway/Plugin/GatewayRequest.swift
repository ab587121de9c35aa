public import Logging
public import NIOCore
public import NIOHTTP1

/// A request as backends and filters see it, after routing.
///
/// `head.uri` is what the backend should use: the normalized path after the route's rewrite,
/// plus the original query. The original target stays in ``originalURI``.
public struct GatewayRequest: Sendable {
    /// Method, rewritten target and headers (filters may change them).
    public var head: HTTPRequestHead
    /// The request target as the client sent it. It may carry credentials (an access token in
    /// the query for WebSocket clients): never log it; log ``path`` instead.
    public let originalURI: String
    /// The normalized path after the route's rewrite, without the query.
    public var path: String
    /// The query string without `?`, if any.
    public var query: String?
    /// Lower-cased host without port (`Host` or `:authority`), if the client sent one.
    public let host: String?
    /// The id sent back as `X-Request-ID` and written to every log line about this request.
    public let requestID: String
    /// `"https"` or `"http"`: how the client reached the gateway.
    public let scheme: String
    /// The client's address.
    public let remoteAddress: SocketAddress?
    /// The route that matched.
    public let routeName: String
    /// The event loop the request runs on; backends must call the ``ResponseWriter`` on it.
    public let eventLoop: any EventLoop
    /// The verified token's identity when the route has `auth` and the request carried a token.
    public var identity: VerifiedIdentity? = nil
    /// The request's W3C trace context; a proxy passes ``TraceContext/traceparent`` on.
    public internal(set) var trace: TraceContext? = nil
    /// The request's server span when `tracing` is configured: a backend starts its own spans
    /// under it (``RequestSpan/startChild(_:kind:)``).
    public internal(set) var span: RequestSpan? = nil
    /// What filters keep about this request between ``Filter/filterRequest(_:)`` and the
    /// response, each under a key of its own (e.g. `ObjectIdentifier` of the filter). Empty for
    /// requests whose filters keep nothing, so it costs them nothing.
    public var filterState: [ObjectIdentifier: any Sendable] = [:]
    /// The whole request body, while it is held for a filter that asked for it
    /// (``Filter/requestBufferLimit(for:)``); `nil` while the body streams. A filter may replace
    /// it: the backend gets what the filters leave, with a `Content-Length` to match.
    public var heldBody: ByteBuffer? = nil
    /// The request's trailers, when its body is held and the client sent any. They are not
    /// forwarded: a held body goes to the backend with a `Content-Length`, which has no place
    /// for trailers (and backends receive none, see ``RequestBodyReceiver``).
    public var heldTrailers: HTTPHeaders? = nil
    /// Whether the response is the gateway's own error for a backend that failed: a backend
    /// answered with a 5xx problem document (``ResponseWriter/respondWithProblem(_:detail:)``),
    /// e.g. the proxy's 502 for an unreachable upstream or its 504 for one that timed out.
    /// Filters see it in ``Filter/filterResponse(_:for:)`` and
    /// ``Filter/filterBufferedResponse(_:for:)``; a 5xx the backend relays from elsewhere is
    /// not a failure.
    public internal(set) var backendFailed = false
    /// The connection's logger; ``logger`` adds this request's metadata only when something is logged.
    let baseLogger: Logger

    /// A logger carrying `request-id` and `route` metadata. Built on use, so requests that log
    /// nothing pay nothing for it.
    public var logger: Logger {
        var logger = self.baseLogger
        logger[metadataKey: "request-id"] = "\(self.requestID)"
        logger[metadataKey: "route"] = "\(self.routeName)"
        return logger
    }
}

/// A complete response with a small body, produced by a filter or a simple backend.
public struct GatewayResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ByteBuffer?
    /// The trailers of a response held whole for filters (``Filter/responseBufferLimit(for:)``);
    /// filters may change them. They are sent on HTTP/2 (a trailers frame after the body); on
    /// HTTP/1.1 a held response goes out with a `Content-Length` and its trailers are dropped.
    public var trailers: HTTPHeaders? = nil
    /// Why the auth filter refused the request's token (a ``TokenRefusalCategory`` name), for
    /// the access log.
    var refusalCategory: String? = nil

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}
