import NIOCore
import NIOHTTP1

// MARK: Request bodies held whole for filters that asked (Filter.requestBufferLimit(for:))

extension GatewayHTTPHandler {
    /// Starts reading the whole body for the filter at `index`, which runs once the body's end
    /// arrives. Reads go on meanwhile (no hold): the body is what the filter waits for.
    func holdRequestBody(of exchange: HTTPExchange, forFilterAt index: Int, limit: Int) {
        guard let context = self.context else { return }
        if let length = exchange.request?.head.headers.first(name: "content-length").flatMap(Int.init), length > limit {
            return self.refuseHeldRequestBody(of: exchange, limit: limit)
        }
        var body = context.channel.allocator.buffer(capacity: 0)
        // Parts that arrived while an earlier filter was suspended.
        for var part in exchange.pendingBody { body.writeBuffer(&part) }
        exchange.pendingBody.removeAll()
        guard body.readableBytes <= limit else { return self.refuseHeldRequestBody(of: exchange, limit: limit) }
        exchange.requestBuffering = .holding(filterIndex: index, body: body, limit: limit, lastProgress: .now())
        guard self.machine.exchange?.request == .receiving else {
            // The end arrived already (while an earlier filter was suspended).
            return self.releaseHeldRequestBody(of: exchange, trailers: nil)
        }
        if self.machine.backendReady() {
            // The filter is what reads the body now: the client that waits for it may send.
            let interim = HTTPResponseHead(version: exchange.head.version, status: .continue)
            _ = self.sendHead(interim, adding: .init(), answering: exchange.head.method, context: context)
            context.flush()
        }
        self.scheduleHeldBodyCheck(of: exchange, in: exchange.bodyIdleTimeout)
    }

    /// Adds a part of the body to the held one; over the limit, the request gets a 413.
    func holdRequestBodyPart(_ buffer: ByteBuffer, of exchange: HTTPExchange) {
        guard case .holding(let index, var body, let limit, _) = exchange.requestBuffering else { return }
        // Let go of the state's reference first, so the append does not copy the body.
        exchange.requestBuffering = .streaming
        guard body.readableBytes + buffer.readableBytes <= limit else {
            return self.refuseHeldRequestBody(of: exchange, limit: limit)
        }
        var buffer = buffer
        body.writeBuffer(&buffer)
        exchange.requestBuffering = .holding(filterIndex: index, body: body, limit: limit, lastProgress: .now())
    }

    /// The body's end arrived: the filter that asked for the body decides, then the rest of the
    /// route runs with the body it left.
    func releaseHeldRequestBody(of exchange: HTTPExchange, trailers: HTTPHeaders?) {
        guard case .holding(let index, let body, _, _) = exchange.requestBuffering else { return }
        self.stopHoldingRequestBody(of: exchange)
        exchange.requestBuffering = .held
        exchange.request?.heldBody = body
        exchange.request?.heldTrailers = trailers
        self.runFilters(of: exchange, from: index)
    }

    /// Hands the body the filters left to the backend: one part with a `Content-Length` to
    /// match, without `Transfer-Encoding` (and without trailers, which a length has no place for).
    func prepareHeldBodyForBackend(of exchange: HTTPExchange) {
        guard case .held = exchange.requestBuffering, var request = exchange.request else { return }
        let body = request.heldBody ?? ByteBuffer()
        request.heldBody = nil
        request.heldTrailers = nil
        let headers = request.head.headers
        if exchange.expectsBody || body.readableBytes > 0 || headers.contains(name: "content-length") {
            request.head.headers.remove(name: "transfer-encoding")
            request.head.headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
        }
        exchange.request = request
        exchange.pendingBody = body.readableBytes > 0 ? [body] : []
    }

    /// A held body over a filter's limit: 413, and the connection closes (the rest of the body
    /// is not read into memory).
    func refuseHeldRequestBody(of exchange: HTTPExchange, limit: Int) {
        self.stopHoldingRequestBody(of: exchange)
        self.logger.info(
            "request refused: its body exceeds what the route's filters hold",
            metadata: ["request-id": "\(exchange.requestID)", "limit": "\(limit)"]
        )
        self.machine.discardBody(closeAfterResponse: true)
        self.writeProblem(
            .payloadTooLarge,
            detail: "the request body exceeds the \(limit) bytes the route's filters can hold",
            exchangeID: exchange.id
        )
    }

    /// Ends holding (released, refused, or cut short) and its timer.
    func stopHoldingRequestBody(of exchange: HTTPExchange) {
        exchange.heldBodyTimer?.cancel()
        exchange.heldBodyTimer = nil
        if case .holding = exchange.requestBuffering { exchange.requestBuffering = .streaming }
    }

    /// A client that stops sending a held body is answered with a 408 once it was quiet for the
    /// idle timeout (the connection's idle timer does not run while a request is in flight).
    private func scheduleHeldBodyCheck(of exchange: HTTPExchange, in delay: TimeAmount) {
        guard let context = self.context else { return }
        exchange.heldBodyTimer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) {
            guard self.current === exchange, case .holding(_, _, _, let lastProgress) = exchange.requestBuffering,
                self.machine.exchange?.request == .receiving
            else { return }
            let quietUntil = lastProgress + exchange.bodyIdleTimeout
            guard quietUntil <= .now() else {
                return self.scheduleHeldBodyCheck(of: exchange, in: quietUntil - .now())
            }
            self.stopHoldingRequestBody(of: exchange)
            self.machine.discardBody(closeAfterResponse: true)
            self.writeProblem(
                .requestTimeout,
                detail:
                    "the request body stopped arriving (no byte for \(exchange.bodyIdleTimeout.nanoseconds / 1_000_000) ms)",
                exchangeID: exchange.id
            )
        }
    }
}
