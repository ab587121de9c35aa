import NIOCore
import NIOHTTP1

// MARK: Responses held whole for filters that asked (Filter.responseBufferLimit(for:))

extension GatewayHTTPHandler {
    /// The smallest body limit the route's filters ask for this request, or `nil` when none holds it.
    func responseBufferLimit(of exchange: HTTPExchange) -> Int? {
        guard let route = exchange.route, !route.filters.isEmpty, let request = exchange.request else { return nil }
        var limit: Int?
        for filter in route.filters {
            if let wanted = filter.responseBufferLimit(for: request) { limit = min(limit ?? wanted, wanted) }
        }
        return limit
    }

    /// Adds a part of the body to the held response; over the limit, the response becomes a 502.
    func hold(_ buffer: ByteBuffer, of exchange: HTTPExchange) {
        guard case .holding(let head, var body, let limit) = exchange.responseBuffering else { return }
        exchange.responseBuffering = .passing
        guard body.readableBytes + buffer.readableBytes <= limit else {
            self.logger.error(
                "response refused: its body exceeds what the route's filters hold",
                metadata: ["request-id": "\(exchange.requestID)", "limit": "\(limit)"]
            )
            exchange.receiver?.cancel()
            self.writeProblem(
                .badGateway,
                detail: "the response body exceeds the \(limit) bytes the route's filters can hold",
                exchangeID: exchange.id
            )
            return
        }
        var buffer = buffer
        body.writeBuffer(&buffer)
        exchange.responseBuffering = .holding(head: head, body: body, limit: limit)
    }

    /// Lets the filters see the whole response, then sends what they made of it.
    func releaseHeldResponse(of exchange: HTTPExchange, trailers: HTTPHeaders?) {
        guard case .holding(let head, let body, _) = exchange.responseBuffering else { return }
        exchange.responseBuffering = .passing
        var response = GatewayResponse(status: head.status, headers: head.headers, body: body)
        response.trailers = trailers
        if let route = exchange.route, let request = exchange.request {
            for filter in route.filters.reversed() where filter.responseBufferLimit(for: request) != nil {
                filter.filterBufferedResponse(&response, for: request)
            }
        }
        var headers = response.headers
        headers.remove(name: "transfer-encoding")
        headers.replaceOrAdd(name: "content-length", value: String(response.body?.readableBytes ?? 0))
        self.writeHead(
            HTTPResponseHead(version: head.version, status: response.status, headers: headers),
            exchangeID: exchange.id
        )
        if let body = response.body, body.readableBytes > 0 {
            _ = self.writeBody(body, flush: false, exchangeID: exchange.id)
        }
        // A held response goes out with a length: HTTP/1.1 has no place for trailers then;
        // HTTP/2 sends them in a frame of their own after the body.
        let trailers = self.isHTTP2 ? response.trailers.flatMap { $0.isEmpty ? nil : $0 } : nil
        self.writeEnd(trailers: trailers, exchangeID: exchange.id)
    }
}
