import EthicalGateway
import HTTP1Codec
import NIOCore
import NIOHTTP1
import WebSocketCore

/// One request forwarded to an upstream: picks the upstream, gets a connection, streams the
/// request body up and the response down with backpressure both ways, enforces the timeouts,
/// retries failed connections where that is safe, and answers 502/504 when it cannot.
///
/// Runs entirely on the request's event loop.
final class ProxyExchange: RequestBodyReceiver, UpstreamConnectionDelegate {
    private enum State {
        /// Waiting for a connection; body parts are held meanwhile (reading is paused).
        case connecting
        /// Request being sent or sent; waiting for the response head.
        case awaitingResponse(UpstreamConnection)
        case streamingResponse(UpstreamConnection)
        /// The upstream answered 101; the rest of its HTTP response is ignored while the
        /// connections are turned into a tunnel.
        case switching(UpstreamConnection)
        case finished
    }

    private let request: GatewayRequest
    private let writer: ResponseWriter
    private let loop: ProxyLoopState
    private let settings: ProxySettings
    private var state = State.connecting
    private var upstream: Upstream?
    private var failedUpstreams: Set<Int> = []
    private var attemptsLeft: Int
    /// Whether an answer in `retries.onStatuses` may be asked of another upstream: the request
    /// is safe to send twice (see `isRetryable`), once it has ended without a body byte.
    private let statusRetryable: Bool
    /// Whether any body bytes came from the client: a body is not kept, so such a request is
    /// never resent. Counted as it arrives rather than guessed from the head: an HTTP/2 `GET`
    /// whose client ends the stream with an empty DATA frame is framed chunked (a body may
    /// follow) and carries none.
    private var receivedBodyBytes = false
    private var pendingBody: [ByteBuffer] = []
    private var requestEnded = false
    private var keepAlive = false
    /// When the exchange's timeout check is due: first the first-byte deadline, then the idle
    /// check, which reads `lastActivity` instead of being moved on every read. The event loop's
    /// one watchdog timer (``ProxyLoopState/watch(_:)``) calls ``watchdogFired()`` then.
    private(set) var watchdogDeadline = NIODeadline.distantFuture
    private var waitingForFirstByte = false
    private var lastActivity = NIODeadline.now()
    private var requestTimer: Scheduled<Void>?
    /// The protocol the client asked to switch to (WebSocket), when the connection can switch.
    private let upgrade: String?
    /// When the attempt in progress took its upstream (for `gateway_upstream_request_duration_seconds`).
    private var attemptStartedAt: NIODeadline?
    /// The attempt's client span, under the request's span, when spans are exported.
    private var attemptSpan: RequestSpan?
    /// Attempts made so far (a retry's span says which resend it is).
    private var attempts = 0
    /// The status of the response being streamed.
    private var responseStatus: Int?

    /// The `Sec-WebSocket-Key` the gateway sent upstream for a client that opened its WebSocket
    /// over HTTP/2 (RFC 8441, which has no key): the upstream's `101` must answer it.
    private let upstreamWebSocketKey: String?

    init(request: consuming GatewayRequest, writer: ResponseWriter, loop: ProxyLoopState, settings: ProxySettings) {
        let upgrade = writer.canUpgrade ? ForwardedHeaders.requestedUpgrade(request.head.headers) : nil
        self.writer = writer
        self.loop = loop
        self.settings = settings
        self.upgrade = upgrade
        // A connection that could not be made carried nothing, so any request may be tried on
        // another upstream then (as nginx does); a status is retried only for safe requests.
        self.attemptsLeft = settings.retries.attempts
        self.statusRetryable = Self.isRetryable(request.head)
        if let key = settings.hashOn {
            self.hashKey = Self.hashKey(for: request, on: key)
        } else {
            self.hashKey = nil
        }
        // The request is taken, not copied (its last use): each copy of a request retains, and
        // later releases, its every field, about 2,000 instructions of a proxied request.
        if upgrade != nil, request.head.version.major == 2 {
            // The upstream speaks HTTP/1.1: it gets the opening an HTTP/1.1 client would send.
            let key = WebSocketHandshake.makeClientKey()
            request.head.headers.replaceOrAdd(name: "sec-websocket-key", value: key)
            self.upstreamWebSocketKey = key
        } else {
            self.upstreamWebSocketKey = nil
        }
        self.request = request
    }

    /// The key consistent hashing places this request by, if it has one.
    private let hashKey: String?

    private static func hashKey(for request: GatewayRequest, on key: HashKeyConfiguration) -> String? {
        if let header = key.header { return request.head.headers.first(name: header) }
        if key.clientAddress == true { return request.remoteAddress?.ipAddress }
        guard let cookie = key.cookie else { return nil }
        for line in request.head.headers["cookie"] {
            for pair in line.split(separator: ";") {
                let trimmed = pair.trimmingASCIIWhitespace()
                if trimmed.hasPrefix(cookie + "="), trimmed.utf8.count > cookie.utf8.count + 1 {
                    return String(trimmed.dropFirst(cookie.count + 1))
                }
            }
        }
        return nil
    }

    /// Safe to send twice: an idempotent method (or an idempotency key); whether it had a body
    /// is known once it ended (`receivedBodyBytes`).
    private static func isRetryable(_ head: HTTPRequestHead) -> Bool {
        let idempotent: [HTTPMethod] = [.GET, .HEAD, .OPTIONS, .PUT, .DELETE, .TRACE]
        return idempotent.contains(head.method) || head.headers.contains(name: "idempotency-key")
    }

    func start() {
        self.loop.countRequest()
        if let seconds = self.settings.timeouts.requestSeconds {
            self.requestTimer = self.loop.eventLoop.assumeIsolated().scheduleTask(in: .seconds(seconds)) {
                self.fail(.gatewayTimeout, "the upstream did not complete the response within \(seconds)s")
            }
        }
        self.connect()
    }

    private func connect() {
        guard let upstream = self.loop.pick(excluding: self.failedUpstreams, hashKey: self.hashKey) else {
            if self.failedUpstreams.isEmpty {
                // Every upstream is unhealthy or ejected: say so at once instead of queueing.
                self.fail(.serviceUnavailable, "no healthy upstream is available")
            } else {
                self.fail(.badGateway, "no upstream could be reached")
            }
            return
        }
        self.upstream = upstream
        self.state = .connecting
        self.beginAttempt(upstream)
        self.writer.pauseRequestBody()
        if let pooled = self.loop.idleConnection(to: upstream) {
            self.send(on: pooled)
            return
        }
        self.loop.connect(to: upstream).assumeIsolated().whenComplete { result in
            guard case .connecting = self.state else {
                if case .success(let connection) = result { connection.channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let connection):
                self.send(on: connection)
            case .failure(let error):
                self.request.logger.debug(
                    "upstream connection failed",
                    metadata: ["upstream": "\(upstream)", "error": "\(error)"]
                )
                let timedOut: Bool
                if case .connectTimeout = error as? ChannelError { timedOut = true } else { timedOut = false }
                self.connectionFailed(upstream: upstream, timedOut: timedOut, cause: error)
            }
        }
    }

    private func connectionFailed(upstream: Upstream, timedOut: Bool, cause: any Error) {
        self.endAttempt(status: nil, failure: timedOut ? "connecting timed out" : "the upstream could not be reached")
        self.failedUpstreams.insert(upstream.index)
        self.loop.recordFailure(upstream)
        self.loop.countResponse(upstream, code: "error")
        if self.attemptsLeft > 0 && self.loop.hasAvailableUpstream(excluding: self.failedUpstreams)
            && self.loop.takeRetry()
        {
            self.settings.metrics.retries.increment()
            self.attemptsLeft -= 1
            self.connect()
        } else if timedOut {
            self.fail(.gatewayTimeout, "connecting to the upstream timed out", cause: cause)
        } else {
            self.fail(.badGateway, "the upstream could not be reached", cause: cause)
        }
    }

    private func send(on connection: UpstreamConnection) {
        self.state = .awaitingResponse(connection)
        self.loop.started(connection.upstream)
        self.writer.noteUpstream(connection.upstream.url)
        connection.handler.delegate = self
        connection.write(
            ForwardedHeaders.upstreamRequestHead(
                for: self.request,
                upstream: connection.upstream,
                preserveHost: self.settings.preserveHost,
                trustedProxies: self.settings.trustedProxies,
                rules: self.settings.requestHeaders,
                upgrade: self.upgrade,
                attemptSpan: self.attemptSpan,
                allocator: connection.channel.allocator
            )
        )
        for part in self.pendingBody {
            connection.channel.write(HTTPClientRequestPart.body(.byteBuffer(part)), promise: nil)
        }
        self.pendingBody.removeAll()
        if self.requestEnded {
            self.sendEnd(on: connection)
        } else if self.upstreamWebSocketKey != nil {
            // An extended CONNECT's stream stays open: its head is the whole HTTP request, and
            // what the client sends next is WebSocket data, held until the upstream switched.
            self.sendEnd(on: connection)
        } else {
            connection.channel.flush()
            if connection.channel.isWritable { self.writer.resumeRequestBody() }
        }
        connection.channel.read()
    }

    private func sendEnd(on connection: UpstreamConnection) {
        connection.channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        // An upstream that answered before the request's end is already streaming: its idle
        // timeout goes on, and the first-byte timeout no longer applies.
        guard case .awaitingResponse = self.state else { return }
        self.waitingForFirstByte = true
        self.scheduleWatchdog(in: .seconds(self.settings.timeouts.firstByteSeconds))
    }

    private func scheduleWatchdog(in delay: TimeAmount) {
        self.watchdogDeadline = .now() + delay
        self.loop.watch(self)
    }

    private func cancelWatchdog() {
        self.watchdogDeadline = .distantFuture
        self.loop.unwatch(self)
    }

    /// The watchdog deadline has passed (called by the event loop's watchdog, which no longer
    /// watches this exchange unless it is scheduled again).
    func watchdogFired() {
        if self.waitingForFirstByte {
            if let upstream = self.upstream {
                self.loop.recordFailure(upstream)
                self.loop.countResponse(upstream, code: "error")
            }
            self.fail(
                .gatewayTimeout,
                "the upstream sent no response within \(self.settings.timeouts.firstByteSeconds)s"
            )
            return
        }
        guard case .streamingResponse = self.state else { return }
        let idle = TimeAmount.seconds(self.settings.timeouts.idleSeconds)
        let silent = NIODeadline.now() - self.lastActivity
        if silent >= idle {
            self.fail(.gatewayTimeout, "the upstream was silent for \(self.settings.timeouts.idleSeconds)s")
        } else {
            self.scheduleWatchdog(in: idle - silent)
        }
    }

    // MARK: RequestBodyReceiver (downstream -> upstream)

    func receiveBody(_ buffer: ByteBuffer) {
        if buffer.readableBytes > 0 { self.receivedBodyBytes = true }
        switch self.state {
        case .connecting:
            self.pendingBody.append(buffer)
        case .awaitingResponse(let connection), .streamingResponse(let connection):
            connection.channel.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
            if !connection.channel.isWritable { self.writer.pauseRequestBody() }
        case .switching, .finished:
            break
        }
    }

    func receiveEnd() {
        self.requestEnded = true
        switch self.state {
        case .awaitingResponse(let connection), .streamingResponse(let connection):
            self.sendEnd(on: connection)
        case .connecting, .switching, .finished:
            break
        }
    }

    func cancel() {
        // The client went away: the upstream connection is mid-exchange and cannot be reused.
        let connection = self.activeConnection
        self.finish()
        connection?.channel.close(promise: nil)
    }

    /// The connection serving this exchange, if one is.
    private var activeConnection: UpstreamConnection? {
        switch self.state {
        case .awaitingResponse(let connection), .streamingResponse(let connection), .switching(let connection):
            return connection
        case .connecting, .finished: return nil
        }
    }

    // MARK: UpstreamConnectionDelegate (upstream -> downstream)

    func upstreamReceived(_ part: HTTPClientResponsePart) {
        switch (self.state, part) {
        case (.awaitingResponse(let connection), .head(let head)) where head.status == .switchingProtocols:
            self.switchProtocols(connection, head: head)
        case (.awaitingResponse, .head(let head))
        where self.upstreamWebSocketKey != nil && (200..<300).contains(head.status.code):
            // To an extended CONNECT (RFC 8441, RFC 9113 8.5) a 2xx means the tunnel is open: an
            // upstream that answered the upgrade with an ordinary 2xx opened none.
            self.fail(.badGateway, "the upstream answered the WebSocket upgrade with \(head.status.code), not 101")
        case (.awaitingResponse(let connection), .head(let head))
        where self.settings.retries.onStatuses.contains(Int(head.status.code)) && self.mayRetry(after: connection):
            // Nothing has reached the client yet: drop this answer and its connection, ask another upstream.
            self.request.logger.debug(
                "retrying",
                metadata: ["status": "\(head.status.code)", "upstream": "\(connection.upstream)"]
            )
            self.endAttempt(status: Int(head.status.code), failure: nil)
            self.finish()
            connection.channel.close(promise: nil)
            self.loop.countResponse(connection.upstream, code: String(head.status.code))
            self.settings.metrics.retries.increment()
            self.failedUpstreams.insert(connection.upstream.index)
            self.attemptsLeft -= 1
            self.connect()
        case (.awaitingResponse(let connection), .head(let head)):
            if head.status.code < 200 { return }  // 100 Continue and other interim responses stay here.
            self.waitingForFirstByte = false
            self.lastActivity = .now()
            self.scheduleWatchdog(in: .seconds(self.settings.timeouts.idleSeconds))
            self.state = .streamingResponse(connection)
            self.responseStatus = Int(head.status.code)
            self.loop.recordSuccess(connection.upstream)
            self.loop.countResponse(connection.upstream, code: String(head.status.code))
            var downstream = head
            ForwardedHeaders.removeHopByHop(&downstream.headers)
            if !self.settings.responseHeaders.isEmpty { self.settings.responseHeaders.apply(to: &downstream.headers) }
            connection.requestsServed += 1
            self.keepAlive = connection.handler.responseKeepsConnection
            self.writer.writeHead(downstream)
        case (.streamingResponse, .body(let buffer)):
            self.lastActivity = .now()
            // Flushed once per read batch, in upstreamReadComplete.
            self.writer.queueBody(buffer)
        case (.streamingResponse(let connection), .end(let trailers)):
            self.endAttempt(status: self.responseStatus, failure: nil)
            self.writer.writeEnd(trailers: trailers)
            let reusable = self.keepAlive && self.requestEnded
            self.finish()
            if reusable {
                self.loop.release(connection)
            } else {
                connection.channel.close(promise: nil)
            }
        default:
            break
        }
    }

    /// The upstream accepted an upgrade: answer the client with its 101 and join the two
    /// connections into a byte tunnel. Neither goes back to HTTP (nor to the pool).
    private func switchProtocols(_ connection: UpstreamConnection, head: HTTPResponseHead) {
        guard self.upgrade != nil else {
            self.fail(.badGateway, "the upstream switched protocols without being asked to")
            return
        }
        if let key = self.upstreamWebSocketKey,
            head.headers.first(name: "sec-websocket-accept") != WebSocketHandshake.acceptValue(for: key)
        {
            self.fail(.badGateway, "the upstream's Sec-WebSocket-Accept does not answer the key the gateway sent")
            return
        }
        var downstream = head
        let upgradeValue = head.headers.first(name: "upgrade")
        ForwardedHeaders.removeHopByHop(&downstream.headers)
        downstream.headers.add(name: "connection", value: "upgrade")
        if let upgradeValue { downstream.headers.add(name: "upgrade", value: upgradeValue) }
        self.loop.recordSuccess(connection.upstream)
        self.endAttempt(status: 101, failure: nil)
        self.cancelWatchdog()
        self.waitingForFirstByte = false
        self.state = .switching(connection)
        let upstreamChannel = connection.channel
        // Leave the decoder's stack before taking it out of the pipeline.
        self.loop.eventLoop.execute {
            guard case .switching = self.state else { return }
            self.finish()
            let upgraded = self.writer.upgrade(downstream) { clientChannel in
                let pipeline = upstreamChannel.pipeline.syncOperations
                do {
                    // Both leave at once (neither defers its removal, as NIO's ByteToMessageHandler
                    // did), so the client's first bytes never meet an HTTP handler on their way up.
                    pipeline.removeHandler(connection.encoder, promise: nil)
                    try ByteTunnel.join(clientChannel, upstreamChannel)
                    // Removed behind the tunnel: what the upstream sent after its 101 head
                    // (already the new protocol's bytes) goes on into the tunnel.
                    pipeline.removeHandler(connection.handler, promise: nil)
                } catch {
                    clientChannel.close(promise: nil)
                    upstreamChannel.close(promise: nil)
                }
            }
            if !upgraded { upstreamChannel.close(promise: nil) }
        }
    }

    /// Whether a retryable status from `connection`'s upstream may be retried elsewhere.
    private func mayRetry(after connection: UpstreamConnection) -> Bool {
        guard self.statusRetryable, !self.receivedBodyBytes, self.attemptsLeft > 0, self.requestEnded else {
            return false
        }
        var tried = self.failedUpstreams
        tried.insert(connection.upstream.index)
        return self.loop.hasAvailableUpstream(excluding: tried) && self.loop.takeRetry()
    }

    func upstreamReadComplete() {
        guard case .streamingResponse(let connection) = self.state else {
            if case .awaitingResponse(let connection) = self.state { connection.channel.read() }
            return
        }
        self.writer.flush()
        // Read more only once the client can take it: memory stays bounded by the socket buffers.
        if self.writer.isWritable {
            connection.channel.read()
        } else {
            self.writer.whenWritable {
                guard case .streamingResponse(let current) = self.state, current === connection else { return }
                // Time spent waiting for the client is not upstream silence.
                self.lastActivity = .now()
                connection.channel.read()
            }
        }
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        // An extended CONNECT's data waits for the tunnel (see send(on:)).
        if self.upstreamWebSocketKey != nil { return }
        if isWritable { self.writer.resumeRequestBody() } else { self.writer.pauseRequestBody() }
    }

    func upstreamClosed(error: (any Error)?) {
        switch self.state {
        case .awaitingResponse(let connection):
            if let parseError = error as? HTTP1ParseError {
                // The upstream answered, but not in HTTP/1.1 the gateway can relay. It is
                // reachable, so this is not counted towards ejection (nginx does not count
                // `invalid_header` either), and it is not sent again: it did reach the upstream.
                self.loop.countResponse(connection.upstream, code: "error")
                self.fail(.badGateway, "the upstream's response is not valid HTTP/1.1", cause: parseError)
                return
            }
            // A pooled connection the upstream closed while we reused it: send again on another
            // connection (this does not use up a retry; nothing reached the upstream's application).
            if connection.requestsServed > 0 && self.statusRetryable && !self.receivedBodyBytes {
                self.endAttempt(status: nil, failure: "the pooled connection was closed by the upstream")
                self.cancelWatchdog()
                self.waitingForFirstByte = false
                self.loop.finished(connection.upstream)
                self.state = .connecting
                self.connect()
                return
            }
            self.loop.recordFailure(connection.upstream)
            self.loop.countResponse(connection.upstream, code: "error")
            self.fail(.badGateway, "the upstream closed the connection without a response", cause: error)
        case .streamingResponse:
            // Headers are out; cutting the client's response is the honest signal.
            self.endAttempt(status: self.responseStatus, failure: "the upstream response ended early")
            self.request.logger.warning(
                "proxy failure",
                metadata: [
                    "status": "\(self.responseStatus.map { "\($0)" } ?? "-")",
                    "detail": "the upstream response ended early; the client's response was cut",
                    "upstream": "\(self.upstream.map { "\($0)" } ?? "-")",
                    "cause": "\(error.map { "\($0)" } ?? "-")",
                ]
            )
            self.finish()
            self.writer.respondWithProblem(.badGateway, detail: "the upstream response ended early")
        case .connecting, .switching, .finished:
            break
        }
    }

    // MARK: Ending

    /// Ends the exchange with the gateway's own problem response. `cause` goes to the log only:
    /// its text (a TLS library's error, a parser's) is for the operator, not the client.
    private func fail(_ status: HTTPResponseStatus, _ detail: String, cause: (any Error)? = nil) {
        if case .finished = self.state { return }
        // Detach before closing, so the close is not reported back as a second failure.
        let connection = self.activeConnection
        self.endAttempt(status: nil, failure: detail)
        self.finish()
        connection?.channel.close(promise: nil)
        self.request.logger.warning(
            "proxy failure",
            metadata: [
                "status": "\(status.code)", "detail": "\(detail)",
                "upstream": "\(self.upstream.map { "\($0)" } ?? "-")",
                "cause": "\(cause.map { "\($0)" } ?? "-")",
            ]
        )
        self.writer.respondWithProblem(status, detail: detail)
    }

    private func finish() {
        switch self.state {
        case .awaitingResponse(let connection), .streamingResponse(let connection), .switching(let connection):
            connection.handler.delegate = nil
            self.loop.finished(connection.upstream)
        case .connecting, .finished:
            break
        }
        // An attempt still open here was cut short: the client went away.
        self.endAttempt(status: self.responseStatus, failure: "the client went away")
        self.state = .finished
        self.cancelWatchdog()
        self.waitingForFirstByte = false
        self.requestTimer?.cancel()
        self.pendingBody.removeAll()
    }
}

// MARK: Attempts: the duration histogram and the client span of each

extension ProxyExchange {
    /// Starts timing an attempt on `upstream`, and its client span when spans are exported
    /// (OpenTelemetry's HTTP client conventions).
    fileprivate func beginAttempt(_ upstream: Upstream) {
        self.attemptStartedAt = .now()
        self.attempts += 1
        guard let parent = self.request.span else { return }
        let method = self.request.head.method.boundedName
        let span = parent.startChild(method, kind: .client)
        span.set("http.request.method", method)
        span.set("server.address", upstream.host)
        span.set("server.port", upstream.port)
        span.set("gateway.upstream", upstream.url)
        span.set("gateway.backend", self.settings.metrics.backend)
        if self.attempts > 1 { span.set("http.request.resend_count", self.attempts - 1) }
        self.attemptSpan = span
    }

    /// Ends the attempt in progress, if one is: records its duration and ends its span (an
    /// error with `failure`, or for a 4xx/5xx status).
    fileprivate func endAttempt(status: Int?, failure: String?) {
        guard let started = self.attemptStartedAt else { return }
        self.attemptStartedAt = nil
        self.loop.attemptDurations.observe(Double((NIODeadline.now() - started).nanoseconds) / 1e9)
        guard let span = self.attemptSpan else { return }
        self.attemptSpan = nil
        if let status { span.set("http.response.status_code", status) }
        span.end(failure: failure ?? status.flatMap { $0 >= 400 ? "HTTP \($0)" : nil })
    }
}

extension TimeAmount {
    /// A duration from configuration seconds.
    static func seconds(_ seconds: Double) -> TimeAmount {
        .nanoseconds(Int64(seconds * 1_000_000_000))
    }
}
