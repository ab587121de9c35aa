import NIOCore
import NIOHTTP1

// MARK: Response side: what backends write, through their ResponseWriter

extension GatewayHTTPHandler: ResponseSink {
    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    private func exchange(_ id: UInt64) -> HTTPExchange? {
        guard let exchange = self.current, exchange.id == id else { return nil }
        return exchange
    }

    func isActive(_ exchangeID: UInt64) -> Bool {
        guard self.exchange(exchangeID) != nil, let progress = self.machine.exchange?.response,
            let context = self.context
        else { return false }
        return progress != .ended && context.channel.isActive
    }

    func writeHead(_ head: HTTPResponseHead, exchangeID: UInt64) {
        guard let exchange = self.exchange(exchangeID), let context = self.context else { return }
        let status = head.status.code
        let method = exchange.head.method
        let suppressBody = method == .HEAD || method == .CONNECT || status == 204 || status == 304 || status < 200
        if case .undecided = exchange.responseBuffering {
            if !suppressBody, let limit = self.responseBufferLimit(of: exchange) {
                let body = context.channel.allocator.buffer(capacity: 0)
                exchange.responseBuffering = .holding(head: head, body: body, limit: limit)
                return
            }
            exchange.responseBuffering = .passing
        }
        var head = head
        head.version = exchange.head.version
        let closeDelimited =
            !self.isHTTP2 && !suppressBody && HTTP1ResponseEncoder.isCloseDelimited(head, answering: method)
        guard
            case .write(let closeConnection) = self.machine.responseHeadWritten(
                suppressBody: suppressBody,
                expectsBody: exchange.expectsBody,
                closeDelimited: closeDelimited
            )
        else { return }
        exchange.status = status
        var added = HTTP1ResponseEncoder.AddedFields(
            requestID: exchange.requestID,
            hsts: self.hsts,
            connectionClose: closeConnection
        )
        if let route = exchange.route, let request = exchange.request, !route.filters.isEmpty || self.isHTTP2 {
            // The filters see the head with the gateway's fields, as it will go out.
            head.headers.replaceOrAdd(name: "x-request-id", value: exchange.requestID)
            if let hsts = self.hsts, !head.headers.contains(name: "strict-transport-security") {
                head.headers.add(name: "strict-transport-security", value: hsts)
            }
            if self.isHTTP2 {
                Self.removeConnectionSpecificFields(&head.headers)
            } else if closeConnection {
                head.headers.replaceOrAdd(name: "connection", value: "close")
            }
            for filter in route.filters.reversed() {
                filter.filterResponse(&head, for: request)
            }
            added = HTTP1ResponseEncoder.AddedFields()
        } else if self.isHTTP2 {
            Self.removeConnectionSpecificFields(&head.headers)
            added.connectionClose = false
        }
        if !self.sendHead(head, adding: added, answering: method, context: context) {
            // A field that would split the response (CR, LF or another control character from
            // an upstream or a filter): nothing honest can be sent any more.
            self.logger.error(
                "response head refused: a header field holds characters not allowed on the wire",
                metadata: ["request-id": "\(exchange.requestID)"]
            )
            context.close(promise: nil)
        }
    }

    /// HTTP/2 has no connection-specific fields (RFC 9113 8.2.2).
    private static func removeConnectionSpecificFields(_ headers: inout HTTPHeaders) {
        for name in ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"] {
            headers.remove(name: name)
        }
    }

    func writeBody(_ buffer: ByteBuffer, flush: Bool, exchangeID: UInt64) -> EventLoopFuture<Void>? {
        guard let context = self.context else { return nil }
        if let exchange = self.exchange(exchangeID), case .holding = exchange.responseBuffering {
            self.hold(buffer, of: exchange)
            return context.eventLoop.makeSucceededVoidFuture()
        }
        guard self.exchange(exchangeID) != nil, self.machine.responseInProgress else {
            return context.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
        if !self.machine.acceptsResponseBody {
            return context.eventLoop.makeSucceededVoidFuture()
        }
        self.exchange(exchangeID)?.responseBytes += buffer.readableBytes
        let promise = context.eventLoop.makePromise(of: Void.self)
        self.sendBody(buffer, context: context, promise: promise)
        if flush { context.flush() }
        return promise.futureResult
    }

    func queueBody(_ buffer: ByteBuffer, exchangeID: UInt64) {
        if let exchange = self.exchange(exchangeID), case .holding = exchange.responseBuffering {
            self.hold(buffer, of: exchange)
            return
        }
        guard let exchange = self.exchange(exchangeID), self.machine.acceptsResponseBody, let context = self.context
        else { return }
        exchange.responseBytes += buffer.readableBytes
        self.sendBody(buffer, context: context, promise: nil)
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
        guard let exchange = self.exchange(exchangeID), let context = self.context else { return }
        if case .holding = exchange.responseBuffering {
            self.releaseHeldResponse(of: exchange, trailers: trailers)
            return
        }
        let requestEnded = self.machine.exchange?.request == .ended
        let action = self.machine.responseEnded()
        if case .ignore = action { return }
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
        switch action {
        case .ignore:
            return
        case .closeAfterWrite(let lingering):
            // A request cut short lets go of its backend (a proxied exchange whose request is
            // complete keeps its upstream connection).
            if !requestEnded { exchange.receiver?.cancel() }
            exchange.receiver = nil
            self.sendEnd(trailers, context: context, promise: promise)
            context.flush()
            written.assumeIsolated().whenComplete { _ in
                // An HTTP/1 client may still be sending (a refused upload): let it finish and
                // read the answer. An HTTP/2 stream, or a connection closed for shutdown, just ends.
                if lingering { LingeringCloseHandler.close(context.channel) } else { context.close(promise: nil) }
            }
        case .awaitRequestEnd:
            // The request's end finishes the exchange; the write stays known until then, in
            // case the client half-closes meanwhile.
            self.sendEnd(trailers, context: context, promise: promise)
            context.flush()
        case .finish(let next):
            // The end goes out before anything of the next request is delivered.
            self.sendEnd(trailers, context: context, promise: promise)
            context.flush()
            self.finish(exchange, then: next)
        }
    }

    func writeProblem(_ status: HTTPResponseStatus, detail: String, exchangeID: UInt64) {
        self.writeProblem(status, detail: detail, exchangeID: exchangeID, backendFailed: false)
    }

    func writeProblem(_ status: HTTPResponseStatus, detail: String, exchangeID: UInt64, backendFailed: Bool) {
        guard let exchange = self.exchange(exchangeID), self.machine.exchange?.response == .notStarted,
            let context = self.context
        else {
            if self.exchange(exchangeID) != nil, self.machine.responseInProgress {
                // Too late for a status: the only honest signal left is to cut the response.
                self.context?.close(promise: nil)
            }
            return
        }
        if backendFailed { exchange.request?.backendFailed = true }
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

    func noteUpstream(_ upstream: String, exchangeID: UInt64) {
        self.exchange(exchangeID)?.upstream = upstream
    }

    func setRequestBodyPaused(_ paused: Bool, exchangeID: UInt64) {
        guard self.exchange(exchangeID) != nil else { return }
        self.machine.setHold(.bodyPaused, paused)
        if !paused { self.releaseHeldRead() }
    }
}
