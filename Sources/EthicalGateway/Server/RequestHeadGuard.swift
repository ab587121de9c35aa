import NIOCore
import NIOHTTP1

/// Guards the bytes of an HTTP/1.1 request head before the HTTP decoder buffers them: a head
/// that grows past the limits gets a 431, and a head that is not complete within the
/// header-read timeout gets a 408 (slow clients cannot hold a connection open by trickling
/// header bytes). Sits between TLS and the HTTP decoder; the ``GatewayHTTPHandler`` tells it
/// when a head is complete and when the next one is due.
///
/// Only head bytes count: the guard finds the empty line that ends the head itself, so a body
/// that arrives in the same read as its head (a 60 KB POST) is never mistaken for a huge head.
///
/// One timer per connection, not one per request: a head's first byte only notes the time, and
/// the timer, when it fires, checks the head being awaited against its own deadline and re-arms
/// for it. Scheduling and cancelling a timer for every request cost about 4% of a proxied
/// request's instructions.
/// What follows a head until the gateway asks for the next one (a body, a pipelined request)
/// is passed on uncounted; that is bounded, as GatewayHTTPHandler stops reading while a
/// request is in flight.
final class RequestHeadGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        /// Waiting for a head; `bytes` of it have arrived.
        case awaitingHead(bytes: Int, scan: HeadEndScanner)
        /// The head's end has passed (or the decoder reported a head); nothing is counted.
        case inRequest
        case rejected
    }

    private let maxHeadBytes: Int
    private let timeout: TimeAmount
    private var state = State.awaitingHead(bytes: 0, scan: HeadEndScanner())
    /// When the head being awaited started (its first byte, or the connection's start); nil
    /// while no head is under way.
    private var headStarted: NIODeadline?
    /// Fires at the deadline of the head that was under way when it was armed; nil when none is armed.
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(limits: RequestLimits) {
        // Request line and header separators come on top of the configured name/value sizes.
        self.maxHeadBytes = limits.maxURIBytes + limits.maxHeaderBytes + 4 * limits.maxHeaderCount + 1024
        self.timeout = .nanoseconds(Int64(limits.headerReadTimeoutSeconds * 1_000_000_000))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // A new connection must send its first head in time, even if it sends nothing at all.
        if context.channel.isActive { self.headBegins(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if self.headStarted == nil { self.headBegins(context: context) }
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.state {
        case .awaitingHead(let bytes, var scan):
            let buffer = self.unwrapInboundIn(data)
            if bytes == 0 && self.headStarted == nil { self.headBegins(context: context) }
            let headBytes = scan.consume(buffer.readableBytesView)
            if bytes + headBytes > self.maxHeadBytes {
                self.reject(context: context, status: .requestHeaderFieldsTooLarge, linger: true)
                return
            }
            if scan.headEnded {
                self.state = .inRequest
                self.headStarted = nil
            } else {
                self.state = .awaitingHead(bytes: bytes + headBytes, scan: scan)
            }
            context.fireChannelRead(data)
        case .inRequest:
            context.fireChannelRead(data)
        case .rejected:
            break
        }
    }

    /// The decoder produced a complete head.
    func headReceived() {
        if case .rejected = self.state { return }
        self.state = .inRequest
        self.headStarted = nil
    }

    /// The exchange is over; the next head is timed from its first byte.
    func awaitNextHead() {
        guard case .inRequest = self.state else { return }
        self.state = .awaitingHead(bytes: 0, scan: HeadEndScanner())
    }

    /// A head is under way from now: note the time, and arm the timer unless it is armed (it
    /// then re-arms for this head when it fires).
    private func headBegins(context: ChannelHandlerContext) {
        let started = NIODeadline.now()
        self.headStarted = started
        if self.timer == nil { self.arm(at: started + self.spreadTimeout, context: context) }
    }

    /// The header-read timeout, up to 10% shorter, differing per connection: connections opened
    /// together (a slowloris flood) would otherwise all be cut, and reconnect, in the same
    /// instant, again and again; spread out, the cuts cost other clients no latency spike. The
    /// spread comes from this handler's identity through the process's seeded hasher, not from
    /// `Double.random`, which costs a getrandom system call per connection.
    private var spreadTimeout: TimeAmount {
        let fraction = Double(UInt16(truncatingIfNeeded: ObjectIdentifier(self).hashValue)) / Double(UInt16.max)
        return .nanoseconds(Int64(Double(self.timeout.nanoseconds) * (1 - 0.1 * fraction)))
    }

    private func arm(at deadline: NIODeadline, context: ChannelHandlerContext) {
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timer = nil
            guard case .awaitingHead = self.state, let started = self.headStarted, let context = self.context
            else { return }
            // The head under way may have begun after the one this timer was armed for.
            let deadline = started + self.spreadTimeout
            if NIODeadline.now() >= deadline {
                self.reject(context: context, status: .requestTimeout, linger: false)
            } else {
                self.arm(at: deadline, context: context)
            }
        }
    }

    /// Answers on the raw connection (the decoder never saw a complete head) with a problem
    /// document and closes. With `linger`, what the client still sends meanwhile is read and
    /// discarded first (``LingeringCloseHandler``): the rest of an oversized head is on its way;
    /// a client that timed out is not sending.
    private func reject(context: ChannelHandlerContext, status: HTTPResponseStatus, linger: Bool) {
        self.state = .rejected
        self.timer?.cancel()
        self.timer = nil
        let detail =
            status == .requestTimeout
            ? "the request head was not complete within the header-read timeout"
            : "the request head is larger than the \(self.maxHeadBytes) bytes the limits allow"
        let problem = ProblemDetails(status: status, detail: detail, instance: nil, requestID: RequestID.generate())
        let body = problem.jsonBody(allocator: context.channel.allocator)
        var head = "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\nconnection: close\r\n"
        for (name, value) in problem.responseHead(version: .http1_1, bodyLength: body.readableBytes).headers {
            head += "\(name): \(value)\r\n"
        }
        head += "x-request-id: \(problem.requestID)\r\n\r\n"
        var response = context.channel.allocator.buffer(capacity: head.utf8.count + body.readableBytes)
        response.writeString(head)
        response.writeImmutableBuffer(body)
        context.writeAndFlush(self.wrapOutboundOut(response))
            .assumeIsolated().whenComplete { _ in
                if linger { LingeringCloseHandler.close(context.channel) } else { context.close(promise: nil) }
            }
    }
}

/// Finds the end of a request head (the empty line after the header lines) across reads.
/// Empty lines before the request line are skipped, as RFC 9112 2.2 allows.
struct HeadEndScanner {
    private var atLineStart = true
    private var sawContent = false
    private(set) var headEnded = false

    /// Scans `bytes`; returns how many of them belong to the head (all of them, or up to and
    /// including the head's final line feed).
    mutating func consume(_ bytes: ByteBufferView) -> Int {
        var count = 0
        for byte in bytes {
            count += 1
            switch byte {
            case UInt8(ascii: "\n"):
                if self.atLineStart && self.sawContent {
                    self.headEnded = true
                    return count
                }
                self.atLineStart = true
            case UInt8(ascii: "\r"):
                break
            default:
                self.atLineStart = false
                self.sawContent = true
            }
        }
        return count
    }
}

@available(*, unavailable)
extension RequestHeadGuard: Sendable {}
