import NIOCore

// MARK: Observability: the request metrics and the access log of a finished exchange

extension GatewayHTTPHandler {
    /// Counts a finished exchange in this loop's metrics (499 when the client left before a
    /// response head was sent).
    func record(_ exchange: HTTPExchange) {
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
}
