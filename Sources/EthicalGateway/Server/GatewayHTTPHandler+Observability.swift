import NIOCore
import NIOHTTP1

// MARK: Observability: the request's span, the request metrics and the access log of a finished exchange

extension GatewayHTTPHandler {
    /// Starts the server span of a request (OpenTelemetry's HTTP server conventions), continuing
    /// the caller's trace when it sent a valid `traceparent`.
    func startSpan(_ head: HTTPRequestHead, trace: TraceContext, tracer: RequestTracer) -> RequestSpan? {
        let incoming = trace.parentSpanID == nil ? nil : trace
        guard tracer.isSampled(incoming) else { return nil }
        let path = String(RequestPath.split(head.uri).path.prefix(2048))
        let scheme = self.scheme
        let version = self.isHTTP2 ? "2" : "\(head.version.major).\(head.version.minor)"
        let client = self.context.flatMap {
            $0.channel.remoteAddress?.ipAddress ?? $0.channel.parent?.remoteAddress?.ipAddress
        }
        return tracer.startServerSpan(method: head.method, incoming: incoming) {
            $0["http.request.method"] = HTTPLoopMetrics.label(head.method)
            $0["url.path"] = path
            $0["url.scheme"] = scheme
            $0["network.protocol.version"] = version
            if let client { $0["client.address"] = client }
            if let host = head.headers.first(name: "host") { $0["server.address"] = host }
            if let agent = head.headers.first(name: "user-agent") { $0["user_agent.original"] = agent }
        }
    }

    /// Counts a finished exchange in this loop's metrics (499 when the client left before a
    /// response head was sent).
    func record(_ exchange: HTTPExchange) {
        let code = exchange.status == 0 ? 499 : exchange.status
        let seconds = Double((NIODeadline.now() - exchange.startedAt).nanoseconds) / 1e9
        if let span = exchange.span {
            span.set("http.response.status_code", Int(code))
            if let route = exchange.route {
                span.rename("\(HTTPLoopMetrics.label(exchange.head.method)) \(route.name)")
                span.set("gateway.route", route.name)
                span.set("gateway.backend", route.backendName)
            }
            if let subject = exchange.request?.identity?.subject { span.set("enduser.id", subject) }
            if let refusal = exchange.refusalCategory { span.set("gateway.auth.refusal", refusal) }
            span.end(failure: code >= 500 ? "HTTP \(code)" : nil)
        }
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
