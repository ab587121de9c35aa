import NIOCore
import NIOHTTP1

/// Guards the bytes of an HTTP/1.1 request head before the HTTP decoder buffers them: a head
/// that grows past the limits gets a 431, and a head that is not complete within the
/// header-read timeout gets a 408 (slow clients cannot hold a connection open by trickling
/// header bytes). Sits between the socket and NIO's HTTP decoder; the
/// ``RedirectToHTTPSHandler`` tells it when a head is complete and when the next one is due.
///
/// Only head bytes count: the guard finds the empty line that ends the head itself, so a body
/// that arrives in the same read as its head (a 60 KB POST) is never mistaken for a huge head.
///
/// One timer per connection (``HeaderReadDeadline``). Used on redirect listeners, which still
/// read requests with NIO's decoder; the gateway's own listeners read them with
/// ``HTTP1RequestDecodingHandler``, which does this guard's work itself.
/// What follows a head until the gateway asks for the next one (a body, a pipelined request)
/// is passed on uncounted; that is bounded, as NIO's pipelining handler on that listener stops
/// reading while a request is being answered.
final class RequestHeadGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum State {
        /// Waiting for a head; `bytes` of it have arrived.
        case awaitingHead(bytes: Int, scan: HeadEndScanner)
        /// The head's end has passed (or the decoder reported a head); nothing is counted.
        case inRequest
        case rejected
    }

    private let maxHeadBytes: Int
    private var state = State.awaitingHead(bytes: 0, scan: HeadEndScanner())
    private var deadline: HeaderReadDeadline!
    private var context: ChannelHandlerContext?

    init(limits: RequestLimits) {
        self.maxHeadBytes = limits.maxHeadBytes
        self.deadline = HeaderReadDeadline(timeout: .seconds(limits.headerReadTimeoutSeconds)) { [weak self] in
            guard let self, case .awaitingHead = self.state, let context = self.context else { return }
            self.reject(context: context, status: .requestTimeout, linger: false)
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.deadline.connectionMayStart(context.channel)
    }

    func channelActive(context: ChannelHandlerContext) {
        self.deadline.connectionMayStart(context.channel)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.deadline.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.state {
        case .awaitingHead(let bytes, var scan):
            let buffer = self.unwrapInboundIn(data)
            if bytes == 0 && self.deadline.headStarted == nil { self.deadline.headBegins(on: context.eventLoop) }
            let headBytes = scan.consume(buffer.readableBytesView)
            if bytes + headBytes > self.maxHeadBytes {
                self.reject(context: context, status: .requestHeaderFieldsTooLarge, linger: true)
                return
            }
            if scan.headEnded {
                self.state = .inRequest
                self.deadline.headEnded()
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
        self.deadline.headEnded()
    }

    /// The exchange is over; the next head is timed from its first byte.
    func awaitNextHead() {
        guard case .inRequest = self.state else { return }
        self.state = .awaitingHead(bytes: 0, scan: HeadEndScanner())
    }

    /// Answers on the raw connection (the decoder never saw a complete head) with a problem
    /// document and closes. With `linger`, what the client still sends meanwhile is read and
    /// discarded first (``LingeringCloseHandler``): the rest of an oversized head is on its way;
    /// a client that timed out is not sending.
    private func reject(context: ChannelHandlerContext, status: HTTPResponseStatus, linger: Bool) {
        self.state = .rejected
        self.deadline.cancel()
        let detail =
            status == .requestTimeout
            ? "the request head was not complete within the header-read timeout"
            : "the request head is larger than the \(self.maxHeadBytes) bytes the limits allow"
        ProblemDetails.answerRawAndClose(context: context, status: status, detail: detail, linger: linger)
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
