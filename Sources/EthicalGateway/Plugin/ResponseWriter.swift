public import NIOCore
public import NIOHTTP1

/// Where a backend writes its response. Every method must be called on the request's event loop.
///
/// The writer belongs to one request: once the response has ended (or the connection closed),
/// further calls are ignored, so a late callback cannot corrupt the next request.
public final class ResponseWriter: @unchecked Sendable {
    /// The request's event loop.
    public let eventLoop: any EventLoop
    private weak var sink: (any ResponseSink)?
    private let exchangeID: UInt64

    init(eventLoop: any EventLoop, sink: any ResponseSink, exchangeID: UInt64) {
        self.eventLoop = eventLoop
        self.sink = sink
        self.exchangeID = exchangeID
    }

    /// Whether the response can still be written (the client is there and it has not ended).
    public var isActive: Bool {
        self.eventLoop.preconditionInEventLoop()
        return self.sink?.isActive(self.exchangeID) ?? false
    }

    /// Whether the connection's outbound buffer has room; when `false`, wait for the future of
    /// the last ``writeBody(_:)`` before writing more.
    public var isWritable: Bool {
        self.sink?.isWritable ?? false
    }

    /// Sends the status line and headers. The gateway adds `X-Request-ID` and connection handling.
    public func writeHead(_ head: HTTPResponseHead) {
        self.eventLoop.preconditionInEventLoop()
        self.sink?.writeHead(head, exchangeID: self.exchangeID)
    }

    /// Sends a part of the body. The future completes when the bytes reached the socket, which
    /// is how a streaming backend applies backpressure.
    ///
    /// - Parameter flush: `false` queues the bytes until ``flush()`` or ``writeEnd(trailers:)``,
    ///   so several parts read together leave in one system call.
    @discardableResult
    public func writeBody(_ buffer: ByteBuffer, flush: Bool = true) -> EventLoopFuture<Void> {
        self.eventLoop.preconditionInEventLoop()
        guard let future = self.sink?.writeBody(buffer, flush: flush, exchangeID: self.exchangeID) else {
            return self.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
        return future
    }

    /// Queues a part of the body without a completion future, the cheapest write: pair it with
    /// ``flush()`` and, for backpressure, ``isWritable`` and ``whenWritable(_:)``.
    public func queueBody(_ buffer: ByteBuffer) {
        self.eventLoop.preconditionInEventLoop()
        self.sink?.queueBody(buffer, exchangeID: self.exchangeID)
    }

    /// Calls `callback` on the event loop once the connection can take more writes (at once if
    /// it can now). One callback is kept at a time; a later call replaces it.
    public func whenWritable(_ callback: @escaping () -> Void) {
        self.eventLoop.preconditionInEventLoop()
        guard let sink = self.sink else { return }
        if sink.isWritable { callback() } else { sink.setWritableCallback(callback, exchangeID: self.exchangeID) }
    }

    /// Sends what ``writeBody(_:flush:)`` queued.
    public func flush() {
        self.eventLoop.preconditionInEventLoop()
        self.sink?.flush(exchangeID: self.exchangeID)
    }

    /// Ends the response.
    public func writeEnd(trailers: HTTPHeaders? = nil) {
        self.eventLoop.preconditionInEventLoop()
        self.sink?.writeEnd(trailers: trailers, exchangeID: self.exchangeID)
    }

    /// Sends a whole response, setting `Content-Length` from the body.
    public func respond(_ response: GatewayResponse) {
        var headers = response.headers
        headers.replaceOrAdd(name: "content-length", value: String(response.body?.readableBytes ?? 0))
        self.writeHead(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))
        if let body = response.body, body.readableBytes > 0 {
            self.writeBody(body, flush: false)
        }
        self.writeEnd()
    }

    /// Answers with an RFC 9457 problem document carrying the request id.
    ///
    /// A 5xx status says the backend failed (an upstream unreachable or timed out, a file that
    /// could not be read): filters see ``GatewayRequest/backendFailed`` set on the response.
    public func respondWithProblem(_ status: HTTPResponseStatus, detail: String) {
        self.eventLoop.preconditionInEventLoop()
        self.sink?.writeProblem(status, detail: detail, exchangeID: self.exchangeID, backendFailed: status.code >= 500)
    }

    /// Whether this connection can be upgraded to another protocol: an HTTP/1.1 connection, or
    /// an HTTP/2 stream opened with an extended CONNECT for a WebSocket (RFC 8441).
    public var canUpgrade: Bool {
        self.sink?.canUpgrade ?? false
    }

    /// Sends `head` (a `101 Switching Protocols`), removes the HTTP handlers from the client's
    /// connection and hands the raw connection to `handOver` on the event loop. The request
    /// ends here for the gateway; the connection belongs to `handOver` (see ``ByteTunnel``).
    ///
    /// On an HTTP/2 extended CONNECT the head goes out as `200` (a `101` is turned into one,
    /// without `Upgrade`, `Connection` and `Sec-WebSocket-Accept`) and `handOver` gets the
    /// stream, whose DATA it reads and writes as bytes; closing it ends the stream.
    ///
    /// - Returns: `false` when the connection cannot be upgraded; nothing was sent.
    @discardableResult
    public func upgrade(_ head: HTTPResponseHead, handOver: @escaping (any Channel) -> Void) -> Bool {
        self.eventLoop.preconditionInEventLoop()
        return self.sink?.upgrade(head, exchangeID: self.exchangeID, handOver: handOver) ?? false
    }

    /// Stops reading the request body until ``resumeRequestBody()``.
    public func pauseRequestBody() {
        self.sink?.setRequestBodyPaused(true, exchangeID: self.exchangeID)
    }

    /// Resumes reading the request body.
    public func resumeRequestBody() {
        self.sink?.setRequestBodyPaused(false, exchangeID: self.exchangeID)
    }

    /// Names the upstream serving this request (e.g. `http://10.0.0.5:8080`), for the access
    /// log; the last one named (after retries) is logged.
    public func noteUpstream(_ upstream: String) {
        self.sink?.noteUpstream(upstream, exchangeID: self.exchangeID)
    }
}

/// The connection side of a ``ResponseWriter``; implemented by the gateway's HTTP handler.
protocol ResponseSink: AnyObject {
    var isWritable: Bool { get }
    func noteUpstream(_ upstream: String, exchangeID: UInt64)
    func isActive(_ exchangeID: UInt64) -> Bool
    func writeHead(_ head: HTTPResponseHead, exchangeID: UInt64)
    func writeBody(_ buffer: ByteBuffer, flush: Bool, exchangeID: UInt64) -> EventLoopFuture<Void>?
    func flush(exchangeID: UInt64)
    func queueBody(_ buffer: ByteBuffer, exchangeID: UInt64)
    func setWritableCallback(_ callback: @escaping () -> Void, exchangeID: UInt64)
    func writeEnd(trailers: HTTPHeaders?, exchangeID: UInt64)
    func writeProblem(_ status: HTTPResponseStatus, detail: String, exchangeID: UInt64, backendFailed: Bool)
    func setRequestBodyPaused(_ paused: Bool, exchangeID: UInt64)
    var canUpgrade: Bool { get }
    func upgrade(_ head: HTTPResponseHead, exchangeID: UInt64, handOver: @escaping (any Channel) -> Void) -> Bool
}
