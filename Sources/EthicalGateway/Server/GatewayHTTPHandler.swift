import HTTP1Codec
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// Serves HTTP requests on one HTTP/1.1 connection or one HTTP/2 stream: applies the request
/// limits, routes, runs the route's filters and hands the request to its backend, then writes
/// the backend's response back with the request id and the right connection handling.
///
/// On HTTP/1.1 it also does what NIO's `HTTPServerPipelineHandler` and
/// `NIOHTTPResponseHeadersValidator` did as handlers of their own: it answers pipelined requests
/// one at a time, in order (while a response is being written, the next request waits undecoded
/// in ``HTTP1RequestDecodingHandler``, and reads are held once it does), closes on a shutdown
/// request once the response in progress is written, and checks every response head before it
/// goes out. Every decision about where the exchange and the connection stand is
/// ``HTTPConnectionStateMachine``'s; this handler keeps the exchange's data and acts on the
/// machine's answers.
///
/// Everything happens on the channel's event loop. Reading is held while a filter is suspended
/// or a backend paused the request body, so a slow backend pushes back on the client.
final class GatewayHTTPHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Where each request finds the runtime it is served from, read only through
    /// ``runtimeForRequest`` (a reload swaps it between requests; a request in flight keeps the
    /// one it started on).
    private let live: LiveRuntime
    /// This connection's event loop's view of ``live``, once the handler is added.
    var slot: LiveRuntime.Slot?
    let scheme: String
    let isHTTP2: Bool
    /// On HTTP/1.1, the decoder before this handler, told when the next request may be read.
    let requestDecoder: HTTP1RequestDecodingHandler?
    /// The listener's `Strict-Transport-Security` value, if it sends one.
    let hsts: String?
    let logger: Logger

    var context: ChannelHandlerContext?
    var machine: HTTPConnectionStateMachine
    /// Writes the responses as bytes on HTTP/1.x (unused on HTTP/2, whose codec takes parts).
    var responseEncoder = HTTP1ResponseEncoder()
    /// The exchange in progress; the connection's idle timer does not run while there is one.
    var current: HTTPExchange? {
        didSet {
            switch (oldValue, self.current) {
            case (nil, let started?):
                started.inFlight?.count += 1
                self.idleHandler?.exchangeStarted()
            case (let ended?, nil):
                ended.inFlight?.count -= 1
                self.idleHandler?.exchangeEnded()
                self.record(ended)
            default: break
            }
        }
    }
    /// The connection's idle timer (on HTTP/2, the parent connection's).
    private let idleHandler: IdleConnectionHandler?
    /// On an HTTP/2 stream, the stream's handlers before this one (a WebSocket opened with
    /// extended CONNECT takes them out of the pipeline).
    let http2Stream: HTTP2StreamHandlers?
    /// What arrived behind a complete request whose response is still being written: the next
    /// requests' parts, a half-close, a parse error, delivered in order once it is written.
    /// Bounded by one read, as reads are held meanwhile.
    private var pipelined = CircularBuffer<PipelinedEvent>()
    private var drainingPipelined = false
    /// The last response's final write, so a close after a half-close does not cut it short.
    /// Kept (one future) for the connection's life: a half-close can come at any time.
    var lastWrite: EventLoopFuture<Void>?
    var nextExchangeID: UInt64 = 0
    private var readPending = false
    /// A backend waiting for the connection to drain (``ResponseWriter/whenWritable(_:)``), or
    /// the next request waiting for it (``nextRequestWaitsForWritability``).
    var writableCallback: (() -> Void)?
    /// The exchange is over but the client has not read enough of the answers yet: the next
    /// request waits until the channel is writable again.
    private var nextRequestWaitsForWritability = false
    /// The client's IP address, for the access log (read once per connection).
    var clientAddress: String?

    private enum PipelinedEvent {
        case part(HTTPServerRequestPart)
        case inputClosed
        case parseError(any Error)
    }

    init(
        live: LiveRuntime,
        scheme: String,
        isHTTP2: Bool,
        requestDecoder: HTTP1RequestDecodingHandler?,
        hsts: String? = nil,
        idleHandler: IdleConnectionHandler? = nil,
        http2Stream: HTTP2StreamHandlers? = nil,
        logger: Logger
    ) {
        self.live = live
        self.scheme = scheme
        self.isHTTP2 = isHTTP2
        self.requestDecoder = requestDecoder
        self.hsts = hsts
        self.idleHandler = idleHandler
        self.http2Stream = http2Stream
        self.logger = logger
        self.machine = HTTPConnectionStateMachine(isHTTP2: isHTTP2)
    }

    /// The configuration a new request is served with: the one place a request reads it.
    var runtimeForRequest: GatewayRuntime { self.slot?.runtime ?? self.live.current }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.slot = self.live.slot(on: context.eventLoop)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.cancelCurrent()
        self.machine.connectionClosed()
        self.pipelined.removeAll()
        self.context = nil
        // Whatever follows (an upgrade's new handlers) reads on.
        if self.readPending {
            self.readPending = false
            context.read()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case ChannelEvent.inputClosed:
            if !self.pipelined.isEmpty {
                self.pipelined.append(.inputClosed)
                return
            }
            self.inputClosed(context: context)
        case is ChannelShouldQuiesceEvent where !self.isHTTP2:
            // Requests behind the one in progress are never served.
            self.pipelined.removeAll()
            switch self.machine.quiesce() {
            case .close, .closeAfterLastWrite: self.closeAfterLastWrite(context: context)
            case .none: break
            }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// The client closed its sending side, after every request it sent has been delivered:
    /// answer those (a client may send its requests and shut its side, as `nc` does), then close.
    private func inputClosed(context: ChannelHandlerContext) {
        switch self.machine.inputClosedReceived() {
        case .close, .closeAfterLastWrite: self.closeAfterLastWrite(context: context)
        case .none: break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.cancelCurrent()
        self.machine.connectionClosed()
        self.pipelined.removeAll(keepingCapacity: false)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        if !self.pipelined.isEmpty {
            self.pipelined.append(.part(part))
            return
        }
        if !self.deliver(part, context: context) {
            self.pipelined.append(.part(part))
        }
    }

    /// Hands one request part to the exchange, as the state machine says; false when it belongs
    /// to a request that must wait for the response in progress.
    private func deliver(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) -> Bool {
        switch part {
        case .head(let head):
            let expectsBody =
                head.headers.contains(name: "transfer-encoding")
                || (head.headers.first(name: "content-length").map { $0 != "0" } ?? false)
            switch self.machine.headReceived(keepAlive: head.isKeepAlive) {
            case .start:
                self.receiveHead(head, expectsBody: expectsBody, context: context)
            case .buffer:
                return false
            case .drop:
                break
            case .close:
                context.close(promise: nil)
            }
        case .body(let buffer):
            switch self.machine.bodyReceived() {
            case .deliver: self.receiveBody(buffer)
            case .discard: break
            case .buffer: return false
            }
        case .end(let trailers):
            switch self.machine.endReceived() {
            case .deliver(let discarded):
                guard !discarded, let exchange = self.current else { break }
                if case .holding = exchange.requestBuffering {
                    self.releaseHeldRequestBody(of: exchange, trailers: trailers)
                } else if let receiver = exchange.receiver {
                    receiver.receiveEnd()
                }
            case .finish(let discarded, let next):
                guard let exchange = self.current else { return true }
                if !discarded, let receiver = exchange.receiver { receiver.receiveEnd() }
                self.finish(exchange, then: next)
            case .upgrade:
                guard let exchange = self.current, let (head, handOver) = exchange.pendingUpgrade else {
                    context.close(promise: nil)
                    return true
                }
                exchange.pendingUpgrade = nil
                self.performUpgrade(head, exchange: exchange, handOver: handOver)
            case .buffer:
                return false
            case .drop:
                break
            }
        }
        return true
    }

    /// Delivers what waited behind the response just written, until a request must wait again.
    private func deliverPipelined(context: ChannelHandlerContext) {
        // Finishing an exchange inside this loop (a request refused at once) lands here again:
        // the loop below goes on with it, instead of a recursion per pipelined request.
        if self.drainingPipelined { return }
        self.drainingPipelined = true
        defer { self.drainingPipelined = false }
        while !self.nextRequestWaitsForWritability, let event = self.pipelined.popFirst() {
            switch event {
            case .part(let part):
                if !self.deliver(part, context: context) {
                    self.pipelined.prepend(event)
                    return
                }
            case .inputClosed:
                self.inputClosed(context: context)
            case .parseError(let error):
                if !self.parseError(error, context: context) {
                    self.pipelined.prepend(event)
                    return
                }
            }
        }
    }

    /// Whether a read must wait now: the state machine's answer, knowing whether a next
    /// request's bytes are already here (on HTTP/2 a stream's reads are held as before).
    private var holdsReads: Bool {
        if self.nextRequestWaitsForWritability { return true }
        let nextRequestWaiting = self.requestDecoder?.hasUndecodedBytes ?? true
        return self.machine.holdsReads(nextRequestWaiting: nextRequestWaiting || !self.pipelined.isEmpty)
    }

    func read(context: ChannelHandlerContext) {
        if self.holdsReads {
            self.readPending = true
        } else {
            context.read()
        }
    }

    func releaseHeldRead() {
        guard self.readPending, !self.holdsReads, let context = self.context else { return }
        self.readPending = false
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let callback = self.writableCallback {
            self.writableCallback = nil
            callback()
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? NIOSSLError, case .uncleanShutdown = error {
            // A TLS client that ended with a plain FIN instead of close_notify: the half-close
            // that follows answers what it sent, then closes.
            return
        }
        if error is HTTP1ParseError || error is HTTPParserError {
            if !self.pipelined.isEmpty || !self.parseError(error, context: context) {
                self.pipelined.append(.parseError(error))
            }
            return
        }
        self.logger.debug("connection error", metadata: ["error": "\(error)"])
        if self.isHTTP2 {
            // An HTTP/2 stream failing in its first read (a header block the HTTP/2-to-HTTP/1
            // conversion refuses) must not close before the connection's stream bookkeeping has
            // seen it open (an assertion in swift-nio-http2): close on the next tick.
            context.eventLoop.assumeIsolated().execute { context.close(promise: nil) }
            return
        }
        context.close(promise: nil)
    }

    /// A request the HTTP decoder could not parse (bad framing, invalid characters, obs-fold):
    /// a 400 problem document if no response is under way and the connection is still open,
    /// then the connection closes, as nothing after the error can be trusted. This replaces
    /// NIO's `HTTPServerProtocolErrorHandler`, which answers with an empty body, no request id,
    /// and also on a connection that is already closing (a debug-build assertion in NIO).
    /// Returns false when the error must wait: it is behind a response in progress, and is the
    /// next request's turn once that is written.
    private func parseError(_ error: any Error, context: ChannelHandlerContext) -> Bool {
        let action = self.machine.parseErrorReceived()
        switch action {
        case .ignore:
            return true
        case .buffer:
            return false
        case .close, .answerAndClose:
            self.logger.debug("malformed request", metadata: ["error": "\(error)"])
        }
        let status: HTTPResponseStatus
        let detail: String
        if let error = error as? HTTP1ParseError {
            status = HTTPResponseStatus(statusCode: error.status)
            detail = "the request is not valid HTTP/1.1: \(error)"
        } else {
            status = .badRequest
            detail = "the request is not valid HTTP/1.1 (\(error))"
        }
        switch action {
        case .ignore, .buffer:
            break
        case .close:
            if let exchange = self.current {
                exchange.receiver?.cancel()
                exchange.receiver = nil
                exchange.pendingBody.removeAll()
                self.stopHoldingRequestBody(of: exchange)
            }
            context.close(promise: nil)
        case .answerAndClose:
            guard context.channel.isActive else {
                context.close(promise: nil)
                return true
            }
            if let exchange = self.current {
                // A broken body (bad chunk framing): the backend must not take what it has as a
                // complete request.
                exchange.receiver?.cancel()
                exchange.receiver = nil
                exchange.pendingBody.removeAll()
                self.stopHoldingRequestBody(of: exchange)
                self.writeProblem(status, detail: detail, exchangeID: exchange.id)
            } else {
                self.answerMalformedRequest(status, detail: detail, context: context)
            }
        }
        return true
    }

    /// The answer (400, 501, 505) to a request whose head could not be read: no exchange exists for it.
    private func answerMalformedRequest(_ status: HTTPResponseStatus, detail: String, context: ChannelHandlerContext) {
        let problem = ProblemDetails(status: status, detail: detail, instance: nil, requestID: RequestID.generate())
        let body = problem.jsonBody(allocator: context.channel.allocator)
        var head = problem.responseHead(version: .http1_1, bodyLength: body.readableBytes)
        head.headers.add(name: "connection", value: "close")
        head.headers.add(name: "x-request-id", value: problem.requestID)
        if let hsts = self.hsts { head.headers.add(name: "strict-transport-security", value: hsts) }
        // The method is unknown: the head could not be parsed. The answer is framed as for a GET.
        guard self.sendHead(head, adding: .init(), answering: .GET, context: context) else {
            context.close(promise: nil)
            return
        }
        self.sendBody(body, context: context, promise: nil)
        let written = context.eventLoop.makePromise(of: Void.self)
        self.sendEnd(nil, context: context, promise: written)
        context.flush()
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    /// The exchange is complete on both sides: get ready for the next request, or close.
    func finish(_ exchange: HTTPExchange, then next: HTTPConnectionStateMachine.NextStep) {
        guard self.current === exchange, let context = self.context else { return }
        self.current = nil
        self.writableCallback = nil
        switch next {
        case .close:
            self.pipelined.removeAll()
            self.closeAfterLastWrite(context: context)
        case .nextRequest:
            guard context.channel.isWritable else {
                // A client that pipelines requests without reading the answers: its next
                // request is taken once the socket can take more, so what the gateway holds for
                // it stays within the channel's write buffer (reads are held meanwhile, as the
                // decoder keeps the next request's bytes). Before, every pipelined request was
                // answered at once and the answers piled up: 10 MB of GETs sent without reading
                // grew the process by 700 MB.
                self.nextRequestWaitsForWritability = true
                self.writableCallback = { [weak self] in self?.takeNextRequest(context: context) }
                return
            }
            self.takeNextRequest(context: context)
        }
    }

    /// Goes on with what waits behind the exchange just finished.
    private func takeNextRequest(context: ChannelHandlerContext) {
        self.nextRequestWaitsForWritability = false
        self.deliverPipelined(context: context)
        self.requestDecoder?.awaitNextHead()
        self.releaseHeldRead()
    }

    /// Closes once the last response is on the wire (writes complete in order).
    func closeAfterLastWrite(context: ChannelHandlerContext) {
        guard let lastWrite = self.lastWrite else {
            context.close(promise: nil)
            return
        }
        context.flush()
        lastWrite.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    private func cancelCurrent() {
        guard let exchange = self.current else { return }
        self.current = nil
        self.stopHoldingRequestBody(of: exchange)
        // An exchange still in progress is cut short; one whose last response was written
        // already let go of its receiver.
        if case .active = self.machine.state { exchange.receiver?.cancel() }
        exchange.receiver = nil
    }
}

@available(*, unavailable)
extension GatewayHTTPHandler: Sendable {}
