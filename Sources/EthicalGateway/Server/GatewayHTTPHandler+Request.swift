import NIOCore
import NIOHTTP1

// MARK: Request side: limits, routing, filters, the backend

extension GatewayHTTPHandler {
    /// A request head the state machine started an exchange for: limits, routing, filters.
    func receiveHead(_ head: HTTPRequestHead, expectsBody: Bool, context: ChannelHandlerContext) {
        self.nextExchangeID &+= 1
        let requestID = RequestID.make(incoming: head.headers.first(name: "x-request-id"))
        // The request is served from the runtime in service now, to its end.
        let runtime = self.runtimeForRequest
        let exchange = HTTPExchange(
            id: self.nextExchangeID,
            head: head,
            requestID: requestID,
            expectsBody: expectsBody,
            inFlight: self.slot?.inFlight
        )
        exchange.isExtendedConnect = self.http2Stream?.headGuard.isWebSocketRequest ?? false
        exchange.accessLog = runtime.accessLog
        let trace = TraceContext.make(
            traceparent: head.headers.first(name: "traceparent"),
            tracestate: head.headers[canonicalForm: "tracestate"].joined(separator: ",")
        )
        if let tracer = runtime.tracer, let span = self.startSpan(head, trace: trace, tracer: tracer) {
            exchange.span = span
            exchange.trace = span.trace
        } else {
            exchange.trace = trace
        }
        self.current = exchange

        let limits = runtime.limits
        // An oversized head on HTTP/1 ends the connection (as nginx does); an HTTP/2 stream
        // just ends.
        let closeOnOversize = !self.isHTTP2
        if head.uri.utf8.count > limits.maxURIBytes {
            return self.reject(
                exchange,
                close: closeOnOversize,
                .uriTooLong,
                "the request target is \(head.uri.utf8.count) bytes; the limit is \(limits.maxURIBytes)"
            )
        }
        if head.headers.count > limits.maxHeaderCount {
            return self.reject(
                exchange,
                close: closeOnOversize,
                .requestHeaderFieldsTooLarge,
                "the request has \(head.headers.count) header fields; the limit is \(limits.maxHeaderCount)"
            )
        }
        var headerBytes = 0
        for (name, value) in head.headers { headerBytes += name.utf8.count + value.utf8.count }
        if headerBytes > limits.maxHeaderBytes {
            return self.reject(
                exchange,
                close: closeOnOversize,
                .requestHeaderFieldsTooLarge,
                "the request headers are \(headerBytes) bytes; the limit is \(limits.maxHeaderBytes)"
            )
        }
        let canonical: CanonicalRequest
        switch CanonicalRequest.make(head, isHTTP2: self.isHTTP2) {
        case .success(let request):
            canonical = request
        case .failure(let refusal):
            return self.reject(exchange, close: refusal.closeConnection, refusal.status, refusal.detail)
        }
        let host = canonical.host
        // An HTTP/1.0 client's expectation is ignored: it cannot read an interim response
        // (RFC 9110 10.1.1 and 15.2: no 1xx to an HTTP/1.0 client), so it gets the final one only.
        if let expectation = head.headers.first(name: "expect"), head.version != .http1_0 {
            guard expectation.lowercased() == "100-continue" else {
                return self.reject(exchange, .expectationFailed, "the only expectation supported is 100-continue")
            }
            // Answered with an interim 100 once a backend is ready to read the body (RFC 9110 10.1.1).
            if expectsBody { self.machine.expectContinue() }
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
        let route = match.target
        exchange.route = route
        exchange.maxBodyBytes = route.maxBodyBytes
        // Capped (at about 31 years) so that no configured value overflows the nanoseconds.
        exchange.bodyIdleTimeout = .nanoseconds(Int64(min(limits.idleTimeoutSeconds, 1e9) * 1e9))
        if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > route.maxBodyBytes {
            return self.reject(
                exchange,
                close: true,
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
        exchange.request?.span = exchange.span
        self.runFilters(of: exchange, from: 0)
    }

    /// A part of the body of the request being received (the state machine passed it on).
    func receiveBody(_ buffer: ByteBuffer) {
        guard let exchange = self.current else { return }
        exchange.bodyBytes += buffer.readableBytes
        if exchange.bodyBytes > exchange.maxBodyBytes {
            self.machine.discardBody(closeAfterResponse: true)
            self.stopHoldingRequestBody(of: exchange)
            exchange.receiver?.cancel()
            exchange.receiver = nil
            exchange.pendingBody.removeAll()
            if self.machine.exchange?.response == .notStarted {
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
        if case .holding = exchange.requestBuffering {
            self.holdRequestBodyPart(buffer, of: exchange)
        } else if let receiver = exchange.receiver {
            receiver.receiveBody(buffer)
        } else {
            exchange.pendingBody.append(buffer)
        }
    }

    /// Runs the route's filters from `index` on, then starts the backend. A filter that wants
    /// the whole body first (``Filter/requestBufferLimit(for:)``) stops the run until the body
    /// is held; ``releaseHeldRequestBody(of:trailers:)`` resumes it at that filter.
    func runFilters(of exchange: HTTPExchange, from index: Int) {
        guard let route = exchange.route, let context = self.context else { return }
        var position = index
        while position < route.filters.count {
            let filter = route.filters[position]
            let outcome: FilterOutcome
            if let limit = filter.requestBufferLimit(for: exchange.request!) {
                guard case .held = exchange.requestBuffering else {
                    return self.holdRequestBody(of: exchange, forFilterAt: position, limit: limit)
                }
                if let held = exchange.request?.heldBody, held.readableBytes > limit {
                    return self.refuseHeldRequestBody(of: exchange, limit: limit)
                }
                outcome = filter.filterBufferedRequest(&exchange.request!)
            } else {
                outcome = filter.filterRequest(&exchange.request!)
            }
            switch outcome {
            case .proceed:
                position += 1
            case .respond(let response):
                self.machine.discardBody(closeAfterResponse: false)
                exchange.refusalCategory = response.refusalCategory
                self.makeWriter(for: exchange).respond(response)
                return
            case .suspend(let future):
                self.machine.setHold(.filterSuspended, true)
                let resumeAt = position + 1
                future.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                    guard self.current === exchange else { return }
                    self.machine.setHold(.filterSuspended, false)
                    // Answered meanwhile (a body over the limit, a broken body): the backend
                    // never sees the request.
                    guard self.machine.exchange?.response == .notStarted else {
                        self.releaseHeldRead()
                        return
                    }
                    switch result {
                    case .success(.proceed(let request)):
                        exchange.request = request
                        self.runFilters(of: exchange, from: resumeAt)
                    case .success(.respond(let response)):
                        self.machine.discardBody(closeAfterResponse: false)
                        exchange.refusalCategory = response.refusalCategory
                        self.makeWriter(for: exchange).respond(response)
                    case .failure(let error):
                        exchange.request?.logger.error("filter failed", metadata: ["error": "\(error)"])
                        self.machine.discardBody(closeAfterResponse: false)
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

    private func startBackend(_ exchange: HTTPExchange, route: CompiledRoute) {
        self.prepareHeldBodyForBackend(of: exchange)
        let writer = self.makeWriter(for: exchange)
        let receiver = route.backend.handle(exchange.request!, response: writer)
        guard self.current === exchange, let progress = self.machine.exchange?.request, progress != .discarding
        else { return }
        if self.machine.backendReady(), let context = self.context {
            let interim = HTTPResponseHead(version: exchange.head.version, status: .continue)
            _ = self.sendHead(interim, adding: .init(), answering: exchange.head.method, context: context)
            context.flush()
        }
        exchange.receiver = receiver
        let pending = exchange.pendingBody
        exchange.pendingBody.removeAll()
        for buffer in pending { receiver.receiveBody(buffer) }
        if progress == .ended { receiver.receiveEnd() }
    }

    private func makeWriter(for exchange: HTTPExchange) -> ResponseWriter {
        ResponseWriter(eventLoop: self.context!.eventLoop, sink: self, exchangeID: exchange.id)
    }

    /// Answers a request the gateway refuses before any backend sees it.
    /// With `close`, the response ends the connection.
    private func reject(
        _ exchange: HTTPExchange,
        close: Bool = false,
        _ status: HTTPResponseStatus,
        _ detail: String
    ) {
        self.machine.discardBody(closeAfterResponse: close)
        self.writeProblem(status, detail: detail, exchangeID: exchange.id)
    }

    /// starts with it on a segment boundary.
    private static func prefixEnd(of kept: Substring, matching matchedPrefix: Substring) -> Substring.Index? {
        guard kept.hasPrefix(matchedPrefix) else { return nil }
        let end = kept.index(kept.startIndex, offsetBy: matchedPrefix.count)
        guard end == kept.endIndex || kept[end] == "/" || matchedPrefix.isEmpty else { return nil }
        return end
    }
}
