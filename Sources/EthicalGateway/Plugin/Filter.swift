public import NIOCore
public import NIOHTTP1

/// A provisioned filter: sees a request before its backend and the response head after it.
///
/// Routes list filters by name; they run in that order. A filter answers synchronously in the
/// common case and suspends only when it must wait (a key fetch, a remote check), so the hot
/// path costs no allocation or hop.
public protocol Filter: Sendable {
    /// Inspects or changes the request. Runs on the request's event loop.
    func filterRequest(_ request: inout GatewayRequest) -> FilterOutcome
    /// Inspects or changes the response head before it is sent.
    func filterResponse(_ head: inout HTTPResponseHead, for request: GatewayRequest)
    /// The most response body bytes this filter wants to see whole before the response is sent,
    /// or `nil` (the default) to let the response stream.
    ///
    /// When any filter of the route returns a limit, the gateway holds the response head and
    /// body until the backend ends it, then calls ``filterBufferedResponse(_:for:)`` and sends
    /// the result with a fresh `Content-Length`. A body over the smallest limit is answered with
    /// a 502 problem document instead. Responses without a body (to `HEAD`, 1xx, 204, 304) are
    /// never held.
    func responseBufferLimit(for request: GatewayRequest) -> Int?
    /// Inspects or replaces a response held whole (see ``responseBufferLimit(for:)``); runs
    /// before ``filterResponse(_:for:)`` sees the head that is finally sent.
    func filterBufferedResponse(_ response: inout GatewayResponse, for request: GatewayRequest)
    /// The most request body bytes this filter wants to see whole before it decides, or `nil`
    /// (the default) to decide on the head alone while the body streams to the backend.
    ///
    /// Asked just before the filter's turn. When it returns a limit, the gateway reads the whole
    /// body first (answering `100 Continue` to a client that expects it), then calls
    /// ``filterBufferedRequest(_:)`` *in place of* ``filterRequest(_:)``, with the body in
    /// ``GatewayRequest/heldBody`` and any trailers in ``GatewayRequest/heldTrailers``. A body
    /// over the limit (by its `Content-Length`, or as it arrives) is answered with a 413 problem
    /// document and the connection closes. The backend then gets the body the filters left,
    /// with a fresh `Content-Length` and no `Transfer-Encoding`. A client that stops sending
    /// meanwhile is answered with a 408 after `limits.idleTimeoutSeconds` without a byte.
    func requestBufferLimit(for request: GatewayRequest) -> Int?
    /// Decides on a request whose body is held whole (see ``requestBufferLimit(for:)``); it may
    /// replace ``GatewayRequest/heldBody``. The default calls ``filterRequest(_:)``.
    func filterBufferedRequest(_ request: inout GatewayRequest) -> FilterOutcome
    /// Starts background work, once, before the filter serves (see ``Backend/start()``).
    func start() throws
    /// Stops what ``start()`` started; called once when the filter is retired, also when it was
    /// never started.
    func shutdown() async
}

extension Filter {
    public func filterResponse(_ head: inout HTTPResponseHead, for request: GatewayRequest) {}
    public func responseBufferLimit(for request: GatewayRequest) -> Int? { nil }
    public func requestBufferLimit(for request: GatewayRequest) -> Int? { nil }
    public func filterBufferedRequest(_ request: inout GatewayRequest) -> FilterOutcome {
        self.filterRequest(&request)
    }
    public func filterBufferedResponse(_ response: inout GatewayResponse, for request: GatewayRequest) {}
    public func start() throws {}
    public func shutdown() async {}
}

/// What a filter decided.
public enum FilterOutcome: Sendable {
    /// Continue with the next filter, then the backend.
    case proceed
    /// Answer now; later filters and the backend do not run.
    case respond(GatewayResponse)
    /// Decide later; the request (and reading its body) waits until the future completes.
    /// The future must complete on the request's event loop.
    case suspend(EventLoopFuture<FilterResolution>)
}

/// A suspended filter's decision.
public enum FilterResolution: Sendable {
    /// Continue with this (possibly changed) request.
    case proceed(GatewayRequest)
    case respond(GatewayResponse)
}
