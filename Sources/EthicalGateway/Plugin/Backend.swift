public import NIOCore

/// A provisioned backend: answers requests routed to it. Backends are the terminal step of a route.
///
/// `handle` runs on the connection's event loop; a backend answers through the
/// ``ResponseWriter`` (on that loop) and returns what should receive the request body. Backends
/// must not block the loop: file and network I/O goes through NIO.
public protocol Backend: Sendable {
    /// Starts answering `request`.
    ///
    /// - Returns: the receiver of the request body; ``DiscardingBodyReceiver`` when the backend
    ///   does not read bodies.
    func handle(_ request: GatewayRequest, response: ResponseWriter) -> any RequestBodyReceiver

    /// Checks the provisioned backend as a whole (the last lifecycle step after decode and
    /// provision); throw ``ConfigIssueError`` naming the JSON path.
    func validate() throws

    /// Starts the backend's background work (health checks, engines, timers), once, after the
    /// whole configuration it belongs to was provisioned and validated and before it serves.
    /// Provisioning must not start anything: a configuration that fails validation, or a
    /// backend a reload carries over, is provisioned and never started. A thrown error fails
    /// the configuration; the gateway then shuts down what it started.
    func start() throws

    /// The backend is about to be retired (the gateway is stopping, or a reload replaced it):
    /// the gateway stopped sending it new requests and waits, at most its shutdown grace
    /// period, for those in flight. A backend whose responses do not end on their own (event
    /// streams) ends them now, telling its clients to reconnect, so they neither hold the
    /// retirement for the whole grace period nor get cut off without a word. Called on any
    /// thread; may be called more than once.
    func quiesce()

    /// Stops everything ``start()`` started and releases what provisioning made. Called once
    /// when the configuration that created this backend is retired (after its in-flight
    /// requests finished), when its configuration failed, or when the gateway stops; also for
    /// backends that were never started.
    func shutdown() async

    /// Whether the backend can serve now (an engine connected, ...); `/readyz` reports the
    /// backends that are not, with ``readinessDetail``.
    var isReady: Bool { get }

    /// Why the backend is not ready, when it is not.
    var readinessDetail: String { get }
}

extension Backend {
    public func validate() throws {}
    public func start() throws {}
    public func quiesce() {}
    public func shutdown() async {}
    public var isReady: Bool { true }
    public var readinessDetail: String { "" }
}

/// Receives a request's body, part by part, on the request's event loop.
public protocol RequestBodyReceiver: AnyObject {
    /// A part of the body. Backends that cannot take more yet call
    /// ``ResponseWriter/pauseRequestBody()``.
    func receiveBody(_ buffer: ByteBuffer)
    /// The body is complete.
    func receiveEnd()
    /// The request ended abnormally (the client went away or broke a limit); release resources.
    func cancel()
}

/// For backends that answer without reading the body; the gateway still reads and discards it
/// so the connection can carry the next request. Stateless, so one instance serves every request.
public final class DiscardingBodyReceiver: RequestBodyReceiver, Sendable {
    /// The shared instance.
    public static let shared = DiscardingBodyReceiver()

    private init() {}
    public func receiveBody(_ buffer: ByteBuffer) {}
    public func receiveEnd() {}
    public func cancel() {}
}
