import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// Serves HTTP requests on one HTTP/1.1 connection or one HTTP/2 stream: applies the request
/// limits, routes, runs the route's filters and hands the request to its backend, then writes
/// the backend's response back with the request id and the right connection handling.
///
/// Everything happens on the channel's event loop. Reading is held while a filter is suspended
/// or a backend paused the request body, so a slow backend pushes back on the client.
final class GatewayHTTPHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Where each request finds the runtime it is served from (a reload swaps it between
    /// requests; a request in flight keeps the one it started on).
    private let live: LiveRuntime
    /// This connection's event loop's view of ``live``, once the handler is added.
    private var slot: LiveRuntime.Slot?
    private let scheme: String
    private let isHTTP2: Bool
    private let headGuard: RequestHeadGuard?
    /// The listener's `Strict-Transport-Security` value, if it sends one.
    private let hsts: String?
    private let logger: Logger

    private var context: ChannelHandlerContext?
    /// The exchange in progress; the connection's idle timer does not run while there is one.
    private var current: Exchange? {
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
    /// The client closed its sending side: answer what it sent, then close.
    private var inputClosed = false
    /// The last response of this connection is being written (`Connection: close`, a refused
    /// request whose body cannot be skipped): requests behind it are not served (RFC 9112 9.6).
    private var closing = false
    /// The last response's final write, so a close after a half-close does not cut it short.
    /// Kept (one future) for the connection's life: a half-close can come at any time.
    private var lastWrite: EventLoopFuture<Void>?
    private var nextExchangeID: UInt64 = 0
    private var readPending = false
    /// A backend waiting for the connection to drain (``ResponseWriter/whenWritable(_:)``).
    private var writableCallback: (() -> Void)?
    /// The client's IP address, for the access log (read once per connection).
    private var clientAddress: String?

    init(
        live: LiveRuntime,
        scheme: String,
        isHTTP2: Bool,
        headGuard: RequestHeadGuard?,
        hsts: String? = nil,
        idleHandler: IdleConnectionHandler? = nil,
        logger: Logger
    ) {
        self.live = live
        self.scheme = scheme
        self.isHTTP2 = isHTTP2
        self.headGuard = headGuard
        self.hsts = hsts
        self.idleHandler = idleHandler
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.slot = self.live.slot(on: context.eventLoop)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.cancelCurrent()
        self.context = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // The pipelining handler delivers the half-close after every request that came before
        // it: answer those (a client may send its requests and shut its side, as `nc` does),
        // then close.
        self.inputClosed = true
        if self.current == nil { self.closeAfterLastWrite(context: context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.cancelCurrent()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.receiveHead(head, context: context)
        case .body(let buffer):
            self.receiveBody(buffer)
        case .end:
            self.receiveEnd()
        }
    }

    func read(context: ChannelHandlerContext) {
        if self.shouldHoldReads {
            self.readPending = true
        } else {
            context.read()
        }
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
        if error is HTTPParserError {
            self.answerMalformedRequest(error, context: context)
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
    private func answerMalformedRequest(_ error: any Error, context: ChannelHandlerContext) {
        self.logger.debug("malformed request", metadata: ["error": "\(error)"])
        // The connection ends after the response being written (bytes after a
        // `Connection: close` request land here): nothing more to say, and closing now would
        // cut that response short.
        if self.closing { return }
        let status = HTTPResponseStatus.badRequest
        let detail = "the request is not valid HTTP/1.1 (\(error))"
        if let exchange = self.current {
            // A broken body (bad chunk framing): the backend must not take what it has as a
            // complete request. Answer 400 if nothing was answered yet, then close.
            exchange.receiver?.cancel()
            exchange.receiver = nil
            exchange.discardingBody = true
            exchange.closeAfterResponse = true
            if exchange.response == .notStarted && context.channel.isActive {
                self.writeProblem(status, detail: detail, exchangeID: exchange.id)
            } else {
                context.close(promise: nil)
            }
            return
        }
        guard context.channel.isActive else {
            context.close(promise: nil)
            return
        }
        let problem = ProblemDetails(status: status, detail: detail, instance: nil, requestID: RequestID.generate())
        let body = problem.jsonBody(allocator: context.channel.allocator)
        var head = problem.responseHead(version: .http1_1, bodyLength: body.readableBytes)
        head.headers.add(name: "connection", value: "close")
        head.headers.add(name: "x-request-id", value: problem.requestID)
        if let hsts = self.hsts { head.headers.add(name: "strict-transport-security", value: hsts) }
        self.closing = true
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    // MARK: Request side

    private func receiveHead(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        // A pipelined request behind a response that ends the connection is never served; the
        // pipelining handler may deliver it while that response is being written.
        if self.closing { return }
        self.headGuard?.headReceived()
        guard self.current == nil else {
            // HTTPServerPipelineHandler serializes requests; a second head here is a protocol bug.
            context.close(promise: nil)
            return
        }
        self.nextExchangeID &+= 1
        let requestID = RequestID.make(incoming: head.headers.first(name: "x-request-id"))
        let expectsBody =
            head.headers.contains(name: "transfer-encoding")
            || (head.headers.first(name: "content-length").map { $0 != "0" } ?? false)
        // The request is served from the runtime in service now, to its end.
        let runtime = self.slot?.runtime ?? self.live.current
        let exchange = Exchange(
            id: self.nextExchangeID,
            head: head,
            requestID: requestID,
            keepAlive: self.isHTTP2 || head.isKeepAlive,
            expectsBody: expectsBody,
            inFlight: self.slot?.inFlight
        )
        exchange.accessLog = runtime.accessLog
        exchange.trace = TraceContext.make(
            traceparent: head.headers.first(name: "traceparent"),
            tracestate: head.headers[canonicalForm: "tracestate"].joined(separator: ",")
        )
        self.current = exchange

        let limits = runtime.limits
        // An oversized head on HTTP/1 ends the connection (as nginx does); an HTTP/2 stream
        // just ends.
        let closeOnOversize = !self.isHTTP2
        if head.uri.utf8.count > limits.maxURIBytes {
            exchange.closeAfterResponse = closeOnOversize
            return self.reject(
                exchange,
                .uriTooLong,
                "the request target is \(head.uri.utf8.count) bytes; the limit is \(limits.maxURIBytes)"
            )
        }
        if head.headers.count > limits.maxHeaderCount {
            exchange.closeAfterResponse = closeOnOversize
            return self.reject(
                exchange,
                .requestHeaderFieldsTooLarge,
                "the request has \(head.headers.count) header fields; the limit is \(limits.maxHeaderCount)"
            )
        }
        var headerBytes = 0
        for (name, value) in head.headers { headerBytes += name.utf8.count + value.utf8.count }
        if headerBytes > limits.maxHeaderBytes {
            exchange.closeAfterResponse = closeOnOversize
            return self.reject(
                exchange,
                .requestHeaderFieldsTooLarge,
                "the request headers are \(headerBytes) bytes; the limit is \(limits.maxHeaderBytes)"
            )
        }
        let canonical: CanonicalRequest
        switch CanonicalRequest.make(head, isHTTP2: self.isHTTP2) {
        case .success(let request):
            canonical = request
        case .failure(let refusal):
            if refusal.closeConnection { exchange.closeAfterResponse = true }
            return self.reject(exchange, refusal.status, refusal.detail)
        }
        let host = canonical.host
        if let expectation = head.headers.first(name: "expect") {
            guard expectation.lowercased() == "100-continue" else {
                return self.reject(exchange, .expectationFailed, "the only expectation supported is 100-continue")
            }
            // Answered with an interim 100 once a backend is ready to read the body (RFC 9110 10.1.1).
            exchange.expectsContinue = expectsBody
        }

        // A path with %2F or %5C is routed as an upstream that decodes them would read it, so
        // an encoded slash cannot steer a request past a route's auth; that route then decides.
        let routingPath = canonical.path.slashesDecoded ?? canonical.path.path
        guard
            let match = runtime.routes.match(
                host: host,
                path: Substring(routingPath),
                method: head.method,
                headers: canonical.head.headers
            )
        else {
            return self.reject(
                exchange,
                .notFound,
                "no route matches \(head.method.rawValue) \(host ?? "")\(routingPath.prefix(512))"
            )
        }
        let route = match.entry.target
        exchange.route = route
        exchange.maxBodyBytes = route.maxBodyBytes
        if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > route.maxBodyBytes {
            exchange.closeAfterResponse = true
            return self.reject(
                exchange,
                .payloadTooLarge,
                "the request body is \(length) bytes; this route accepts at most \(route.maxBodyBytes)"
            )
        }

        var forwardedPath = Substring(routingPath)
        var matchedPrefix = match.matchedPrefix
        if canonical.path.slashesDecoded != nil {
            switch route.escapedSlashes {
            case .reject:
                return self.reject(
                    exchange,
                    .badRequest,
                    "the path contains an encoded slash or backslash (%2F, %5C); route \"\(route.name)\" refuses them"
                )
            case .decode:
                break
            case .keep:
                let kept = Substring(canonical.path.path)
                guard let prefixEnd = Self.prefixEnd(of: kept, matching: matchedPrefix) else {
                    return self.reject(
                        exchange,
                        .badRequest,
                        "the path has an encoded slash inside the part route \"\(route.name)\" matches"
                    )
                }
                forwardedPath = kept
                matchedPrefix = kept[..<prefixEnd]
            }
        }
        let backendPath = route.rewrite.apply(to: forwardedPath, matchedPrefix: matchedPrefix)
        let query = canonical.query
        var forwardedHead = canonical.head
        forwardedHead.uri = query.map { backendPath + "?" + $0 } ?? backendPath
        exchange.request = GatewayRequest(
            head: forwardedHead,
            originalURI: head.uri,
            path: backendPath,
            query: query.map(String.init),
            host: host,
            requestID: requestID,
            scheme: self.scheme,
            remoteAddress: context.channel.remoteAddress,
            routeName: route.name,
            eventLoop: context.eventLoop,
            baseLogger: self.logger
        )
        exchange.request?.trace = exchange.trace
        self.runFilters(of: exchange, from: 0)
    }

    private func receiveBody(_ buffer: ByteBuffer) {
        guard let exchange = self.current, !exchange.requestEnded else { return }
        exchange.bodyBytes += buffer.readableBytes
        if exchange.bodyBytes > exchange.maxBodyBytes && !exchange.discardingBody {
            exchange.discardingBody = true
            exchange.closeAfterResponse = true
            exchange.receiver?.cancel()
            exchange.receiver = nil
            exchange.pendingBody.removeAll()
            if exchange.response == .notStarted {
                self.writeProblem(
                    .payloadTooLarge,
                    detail: "the request body exceeds the \(exchange.maxBodyBytes) bytes this route accepts",
                    exchangeID: exchange.id
                )
            } else {
                self.context?.close(promise: nil)
            }
            return
        }
        guard !exchange.discardingBody else { return }
        if let receiver = exchange.receiver {
            receiver.receiveBody(buffer)
        } else {
            exchange.pendingBody.append(buffer)
        }
    }

    private func receiveEnd() {
        guard let exchange = self.current, !exchange.requestEnded else { return }
        exchange.requestEnded = true
        if let (head, handOver) = exchange.pendingUpgrade {
            exchange.pendingUpgrade = nil
            self.performUpgrade(head, exchange: exchange, handOver: handOver)
            return
        }
        if !exchange.discardingBody, let receiver = exchange.receiver {
            receiver.receiveEnd()
        }
        if exchange.response == .ended {
            self.finish(exchange)
        }
    }

    /// Runs the route's filters from `index` on, then starts the backend.
    private func runFilters(of exchange: Exchange, from index: Int) {
        guard let route = exchange.route, let context = self.context else { return }
        var position = index
        while position < route.filters.count {
            switch route.filters[position].filterRequest(&exchange.request!) {
            case .proceed:
                position += 1
            case .respond(let response):
                exchange.discardingBody = true
                exchange.refusalCategory = response.refusalCategory
                self.makeWriter(for: exchange).respond(response)
                return
            case .suspend(let future):
                exchange.suspended = true
                let resumeAt = position + 1
                future.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                    guard self.current === exchange else { return }
                    exchange.suspended = false
                    switch result {
                    case .success(.proceed(let request)):
                        exchange.request = request
                        self.runFilters(of: exchange, from: resumeAt)
                    case .success(.respond(let response)):
                        exchange.discardingBody = true
                        exchange.refusalCategory = response.refusalCategory
                        self.makeWriter(for: exchange).respond(response)
                    case .failure(let error):
                        exchange.request?.logger.error("filter failed", metadata: ["error": "\(error)"])
                        exchange.discardingBody = true
                        self.writeProblem(
                            .internalServerError,
                            detail: "the request could not be processed",
                            exchangeID: exchange.id
                        )
                    }
                    self.releaseHeldRead()
                }
                return
            }
        }
        self.startBackend(exchange, route: route)
    }

    private func startBackend(_ exchange: Exchange, route: CompiledRoute) {
        let writer = self.makeWriter(for: exchange)
        let receiver = route.backend.handle(exchange.request!, response: writer)
        guard self.current === exchange, !exchange.discardingBody else { return }
        if exchange.expectsContinue && exchange.response == .notStarted && !exchange.requestEnded,
            let context = self.context
        {
            let interim = HTTPResponseHead(version: exchange.head.version, status: .continue)
            context.writeAndFlush(self.wrapOutboundOut(.head(interim)), promise: nil)
        }
        exchange.receiver = receiver
        let pending = exchange.pendingBody
        exchange.pendingBody.removeAll()
        for buffer in pending { receiver.receiveBody(buffer) }
        if exchange.requestEnded { receiver.receiveEnd() }
    }

    private func makeWriter(for exchange: Exchange) -> ResponseWriter {
        ResponseWriter(eventLoop: self.context!.eventLoop, sink: self, exchangeID: exchange.id)
    }

    /// Answers a request the gateway refuses before any backend sees it.
    private func reject(_ exchange: Exchange, _ status: HTTPResponseStatus, _ detail: String) {
        exchange.discardingBody = true
        self.writeProblem(status, detail: detail, exchangeID: exchange.id)
    }

    /// The exchange is complete on both sides; get ready for the next request.
    private func finish(_ exchange: Exchange) {
        guard self.current === exchange else { return }
        self.current = nil
        self.writableCallback = nil
        if self.inputClosed, let context = self.context {
            self.closeAfterLastWrite(context: context)
            return
        }
        self.headGuard?.awaitNextHead()
        self.releaseHeldRead()
    }

    /// Closes once the last response is on the wire. Responses to pipelined requests can be
    /// written re-entrantly and unflushed when the half-close arrives: a close now would drop
    /// them, so it waits for the last response's end (writes complete in order).
    private func closeAfterLastWrite(context: ChannelHandlerContext) {
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
        self.releaseReceiver(of: exchange)
    }

    /// Lets go of the backend's body receiver; cancels it unless the exchange ended normally
    /// (request and response both complete: a proxied exchange then keeps its upstream connection).
    private func releaseReceiver(of exchange: Exchange) {
        if exchange.response != .ended || !exchange.requestEnded {
            exchange.receiver?.cancel()
        }
        exchange.receiver = nil
    }

    /// Where `matchedPrefix` (matched on the slash-decoded path) ends in `kept`, when `kept`
    /// starts with it on a segment boundary.
    private static func prefixEnd(of kept: Substring, matching matchedPrefix: Substring) -> Substring.Index? {
        guard kept.hasPrefix(matchedPrefix) else { return nil }
        let end = kept.index(kept.startIndex, offsetBy: matchedPrefix.count)
        guard end == kept.endIndex || kept[end] == "/" || matchedPrefix.isEmpty else { return nil }
        return end
    }

    /// Counts a finished exchange in this loop's metrics (499 when the client left before a
    /// response head was sent).
    private func record(_ exchange: Exchange) {
        let code = exchange.status == 0 ? 499 : exchange.status
        let seconds = Double((NIODeadline.now() - exchange.startedAt).nanoseconds) / 1e9
        self.slot?.http.record(
            route: exchange.route?.name ?? "none",
            method: exchange.head.method,
            code: code,
            seconds: seconds,
            requestBytes: exchange.bodyBytes,
            responseBytes: exchange.responseBytes
        )
        guard let accessLog = exchange.accessLog, exchange.route?.accessLog ?? true, let context = self.context,
            accessLog.sample(status: code, on: context.eventLoop)
        else { return }
        if self.clientAddress == nil {
            self.clientAddress =
                context.channel.remoteAddress?.ipAddress ?? context.channel.parent?.remoteAddress?.ipAddress ?? "-"
        }
        let record = AccessLogRecord(
            requestID: exchange.requestID,
            traceID: exchange.trace?.traceID,
            client: self.clientAddress,
            method: exchange.head.method.rawValue,
            host: exchange.request?.host ?? exchange.head.headers.first(name: "host"),
            path: String(RequestPath.split(exchange.head.uri).path.prefix(2048)),
            httpVersion: self.isHTTP2 ? "HTTP/2" : "HTTP/\(exchange.head.version.major).\(exchange.head.version.minor)",
            status: code,
            requestBytes: exchange.bodyBytes,
            responseBytes: exchange.responseBytes,
            seconds: seconds,
            route: exchange.route?.name,
            backend: exchange.route?.backendName,
            upstream: exchange.upstream,
            subject: exchange.request?.identity?.subject,
            authRefusal: exchange.refusalCategory
        )
        accessLog.append(record.line(), on: context.eventLoop)
    }

    private var shouldHoldReads: Bool {
        guard let exchange = self.current else { return false }
        return exchange.suspended || exchange.bodyPaused
    }

    private func releaseHeldRead() {
        guard self.readPending, !self.shouldHoldReads, let context = self.context else { return }
        self.readPending = false
        context.read()
    }
}

@available(*, unavailable)
extension GatewayHTTPHandler: Sendable {}

// MARK: - Response side

extension GatewayHTTPHandler: ResponseSink {
    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    private func exchange(_ id: UInt64) -> Exchange? {
        guard let exchange = self.current, exchange.id == id else { return nil }
        return exchange
    }

    func isActive(_ exchangeID: UInt64) -> Bool {
        guard let exchange = self.exchange(exchangeID), let context = self.context else { return false }
        return exchange.response != .ended && context.channel.isActive
    }

    func writeHead(_ head: HTTPResponseHead, exchangeID: UInt64) {
        guard let exchange = self.exchange(exchangeID), exchange.response == .notStarted, let context = self.context
        else {
            return
        }
        var head = head
        head.version = exchange.head.version
        head.headers.replaceOrAdd(name: "x-request-id", value: exchange.requestID)
        if let hsts = self.hsts, !head.headers.contains(name: "strict-transport-security") {
            head.headers.add(name: "strict-transport-security", value: hsts)
        }
        if self.isHTTP2 {
            for name in ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"] {
                head.headers.remove(name: name)
            }
        } else {
            // A refused request's unread body could be of any size; close instead of reading it.
            if exchange.expectsBody && !exchange.requestEnded && exchange.discardingBody {
                exchange.closeAfterResponse = true
            }
            if !exchange.keepAlive || exchange.closeAfterResponse {
                exchange.closeAfterResponse = true
                head.headers.replaceOrAdd(name: "connection", value: "close")
            }
        }
        if let route = exchange.route, let request = exchange.request {
            for filter in route.filters.reversed() {
                filter.filterResponse(&head, for: request)
            }
        }
        let status = head.status.code
        exchange.status = status
        exchange.suppressBody = exchange.head.method == .HEAD || status == 204 || status == 304 || status < 200
        exchange.response = .headSent
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
    }

    func writeBody(_ buffer: ByteBuffer, flush: Bool, exchangeID: UInt64) -> EventLoopFuture<Void>? {
        guard let context = self.context else { return nil }
        guard let exchange = self.exchange(exchangeID), exchange.response == .headSent else {
            return context.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
        if exchange.suppressBody {
            return context.eventLoop.makeSucceededVoidFuture()
        }
        exchange.responseBytes += buffer.readableBytes
        if flush {
            return context.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(buffer))))
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: promise)
        return promise.futureResult
    }

    func queueBody(_ buffer: ByteBuffer, exchangeID: UInt64) {
        guard let exchange = self.exchange(exchangeID), exchange.response == .headSent, !exchange.suppressBody,
            let context = self.context
        else { return }
        exchange.responseBytes += buffer.readableBytes
        context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    func setWritableCallback(_ callback: @escaping () -> Void, exchangeID: UInt64) {
        guard self.exchange(exchangeID) != nil else { return }
        self.writableCallback = callback
    }

    func flush(exchangeID: UInt64) {
        guard self.exchange(exchangeID) != nil else { return }
        self.context?.flush()
    }

    func writeEnd(trailers: HTTPHeaders?, exchangeID: UInt64) {
        guard let exchange = self.exchange(exchangeID), exchange.response == .headSent, let context = self.context
        else {
            return
        }
        exchange.response = .ended
        self.logger.debug(
            "request",
            metadata: [
                "request-id": "\(exchange.requestID)", "method": "\(exchange.head.method.rawValue)",
                "path": "\(RequestPath.split(exchange.head.uri).path)", "status": "\(exchange.status)",
                "route": "\(exchange.route?.name ?? "-")", "request-bytes": "\(exchange.bodyBytes)",
            ]
        )
        let promise = context.eventLoop.makePromise(of: Void.self)
        let written = promise.futureResult
        self.lastWrite = written
        if exchange.closeAfterResponse {
            self.releaseReceiver(of: exchange)
            self.closing = true
            context.writeAndFlush(self.wrapOutboundOut(.end(trailers)), promise: promise)
            let isHTTP2 = self.isHTTP2
            written.assumeIsolated().whenComplete { _ in
                // An HTTP/1 client may still be sending (a refused upload): let it finish and
                // read the answer. An HTTP/2 stream just ends.
                if isHTTP2 { context.close(promise: nil) } else { LingeringCloseHandler.close(context.channel) }
            }
            return
        }
        guard exchange.requestEnded else {
            // The request's end finishes the exchange (receiveEnd); the write stays known until
            // then, in case the client half-closes meanwhile.
            context.writeAndFlush(self.wrapOutboundOut(.end(trailers)), promise: promise)
            return
        }
        // Writing the end lets the pipelining handler deliver the next buffered request (and a
        // buffered half-close) at once, inside this call: the exchange must be over before.
        self.finish(exchange)
        context.writeAndFlush(self.wrapOutboundOut(.end(trailers)), promise: promise)
    }

    func writeProblem(_ status: HTTPResponseStatus, detail: String, exchangeID: UInt64) {
        guard let exchange = self.exchange(exchangeID), exchange.response == .notStarted, let context = self.context
        else {
            if let exchange = self.exchange(exchangeID), exchange.response == .headSent {
                // Too late for a status: the only honest signal left is to cut the response.
                self.context?.close(promise: nil)
            }
            return
        }
        let problem = ProblemDetails(
            status: status,
            detail: detail,
            instance: String(RequestPath.split(exchange.head.uri).path.prefix(512)),
            requestID: exchange.requestID,
            traceID: exchange.trace?.traceID
        )
        let body = problem.jsonBody(allocator: context.channel.allocator)
        self.writeHead(
            problem.responseHead(version: exchange.head.version, bodyLength: body.readableBytes),
            exchangeID: exchangeID
        )
        _ = self.writeBody(body, flush: false, exchangeID: exchangeID)
        self.writeEnd(trailers: nil, exchangeID: exchangeID)
    }

    var canUpgrade: Bool { !self.isHTTP2 }

    func upgrade(_ head: HTTPResponseHead, exchangeID: UInt64, handOver: @escaping (any Channel) -> Void) -> Bool {
        guard !self.isHTTP2, let exchange = self.exchange(exchangeID), exchange.response == .notStarted,
            self.context != nil
        else { return false }
        guard exchange.requestEnded else {
            // The request's end is still in the decoder: switch once it has passed, so no HTTP
            // part reaches the new protocol's handlers.
            exchange.pendingUpgrade = (head, handOver)
            return true
        }
        self.performUpgrade(head, exchange: exchange, handOver: handOver)
        return true
    }

    /// Sends the `101`, takes HTTP out of the pipeline and hands the connection over.
    private func performUpgrade(
        _ head: HTTPResponseHead,
        exchange: Exchange,
        handOver: @escaping (any Channel) -> Void
    ) {
        guard let context = self.context else { return }
        var head = head
        head.version = exchange.head.version
        head.headers.replaceOrAdd(name: "x-request-id", value: exchange.requestID)
        exchange.response = .ended
        exchange.status = head.status.code
        self.current = nil
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        // The 101 has passed the encoder; take HTTP out of the pipeline. The decoder goes last,
        // after the new owner's handlers are in place.
        let pipeline = context.pipeline.syncOperations
        let channel = context.channel
        do {
            if let guardHandler = self.headGuard { pipeline.removeHandler(guardHandler, promise: nil) }
            for handler in [
                try? pipeline.handler(type: HTTPServerProtocolErrorHandler.self) as (any RemovableChannelHandler)?,
                try? pipeline.handler(type: NIOHTTPResponseHeadersValidator.self),
                try? pipeline.handler(type: HTTPServerPipelineHandler.self),
                try pipeline.handler(type: HTTPResponseEncoder.self),
            ] {
                if let handler { pipeline.removeHandler(handler, promise: nil) }
            }
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            pipeline.removeHandler(context: context, promise: nil)
            handOver(channel)
            // Whatever the new protocol does not consume of a half-close ends the connection.
            try pipeline.addHandler(CloseOnInputClosedHandler())
            pipeline.removeHandler(decoder, promise: nil)
        } catch {
            self.logger.warning("upgrade failed", metadata: ["error": "\(error)"])
            channel.close(promise: nil)
        }
    }

    func noteUpstream(_ upstream: String, exchangeID: UInt64) {
        self.exchange(exchangeID)?.upstream = upstream
    }

    func setRequestBodyPaused(_ paused: Bool, exchangeID: UInt64) {
        guard let exchange = self.exchange(exchangeID) else { return }
        exchange.bodyPaused = paused
        if !paused { self.releaseHeldRead() }
    }
}

/// One request and its response, as the handler tracks them.
private final class Exchange {
    enum ResponseProgress { case notStarted, headSent, ended }

    let id: UInt64
    let head: HTTPRequestHead
    let requestID: String
    let keepAlive: Bool
    let expectsBody: Bool
    var route: CompiledRoute?
    var request: GatewayRequest?
    var receiver: (any RequestBodyReceiver)?
    var pendingBody: [ByteBuffer] = []
    var maxBodyBytes = Int.max
    var bodyBytes = 0
    var requestEnded = false
    var discardingBody = false
    var suspended = false
    var bodyPaused = false
    var closeAfterResponse = false
    /// The client sent `Expect: 100-continue` and waits before sending its body.
    var expectsContinue = false
    var suppressBody = false
    var status: UInt = 0
    var response = ResponseProgress.notStarted
    /// An upgrade the backend asked for before the request's end had arrived.
    var pendingUpgrade: (HTTPResponseHead, (any Channel) -> Void)?
    /// The in-flight count of the runtime the exchange started on (on this loop).
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

    init(
        id: UInt64,
        head: HTTPRequestHead,
        requestID: String,
        keepAlive: Bool,
        expectsBody: Bool,
        inFlight: InFlightCounter?
    ) {
        self.inFlight = inFlight
        self.id = id
        self.head = head
        self.requestID = requestID
        self.keepAlive = keepAlive
        self.expectsBody = expectsBody
        self.requestEnded = false
    }
}
