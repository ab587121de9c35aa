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
    /// Starts background work, once, before the filter serves (see ``Backend/start()``).
    func start() throws
    /// Stops what ``start()`` started; called once when the filter is retired, also when it was
    /// never started.
    func shutdown() async
}

extension Filter {
    public func filterResponse(_ head: inout HTTPResponseHead, for request: GatewayRequest) {}
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
