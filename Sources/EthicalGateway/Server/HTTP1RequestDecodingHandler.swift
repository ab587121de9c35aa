import HTTP1Codec
import NIOCore
import NIOHTTP1

/// Reads HTTP/1.1 requests from the connection's bytes with the gateway's own decoder
/// (``HTTP1RequestDecoder``: ``HTTP1RequestHeadParser`` for heads, its own body framing) and
/// passes them on as request parts to ``GatewayHTTPHandler``. It replaces NIO's
/// `HTTPRequestDecoder` (llhttp and its callbacks, `ByteToMessageHandler`) and the head guard
/// that sat before it: it owns the receive buffer, so it counts a head's bytes itself (431 over
/// the limits) and times it (408 after the header-read timeout), both answered on the raw
/// connection, which then closes.
///
/// One request at a time: after a request's end it decodes nothing more until the gateway's
/// handler says the exchange is over (``awaitNextHead()``). Pipelined requests wait in the
/// receive buffer meanwhile (the gateway's handler holds reads once bytes wait here,
/// ``hasUndecodedBytes``, so that is bounded by one read), the header-read timeout of the next
/// head starts only then, and after a protocol switch the bytes behind the upgrade's head are
/// still here: they go on to the new protocol's handlers when this handler is removed, where
/// NIO's decoder dropped them.
///
/// A request the decoder refuses is reported with `fireErrorCaught` (an ``HTTP1ParseError``),
/// which the gateway's handler answers (400, 501 or 505 with the reason) before closing;
/// nothing more is decoded.
final class HTTP1RequestDecodingHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPServerRequestPart

    private enum State {
        /// Decoding: waiting for a head, or inside a request.
        case reading
        /// A request's end was passed on: nothing is decoded until ``awaitNextHead()``.
        case awaitingExchangeEnd
        /// The connection is being answered and closed (a refusal, an oversized or late head).
        case stopped
    }

    /// How the gateway reads request heads: `Host` is checked by ``CanonicalRequest`` (a bad or
    /// missing `Host` gets a 400 that keeps the connection, the framing being sound), and more
    /// than one space after the method is read as one, as llhttp and nginx do.
    static let parserOptions: HTTP1RequestHeadParser.Options = {
        var options = HTTP1RequestHeadParser.Options()
        options.checksHost = false
        options.allowsSpacesAfterMethod = true
        return options
    }()

    private static let noBytes = ByteBuffer()

    private var decoder: HTTP1RequestDecoder
    private var state = State.reading
    /// Bytes received and not yet decoded (nil when there are none).
    private var buffer: ByteBuffer?
    /// Set while the decoding loop runs, so a request finished from inside it does not start
    /// a second loop.
    private var decoding = false
    /// The client closed its sending side; passed on once what came before it is decoded.
    private var inputClosedPending = false
    private var deadline: HeaderReadDeadline!
    private var context: ChannelHandlerContext?

    init(limits: RequestLimits) {
        self.decoder = HTTP1RequestDecoder(maxHeadBytes: limits.maxHeadBytes, options: Self.parserOptions)
        self.deadline = HeaderReadDeadline(timeout: .seconds(limits.headerReadTimeoutSeconds)) { [weak self] in
            guard let self, case .reading = self.state, self.decoder.awaitsHead, let context = self.context else {
                return
            }
            self.reject(
                context: context,
                status: .requestTimeout,
                detail: "the request head was not complete within the header-read timeout",
                linger: false
            )
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

    /// Hands what was received and not decoded (the new protocol's first bytes, after an
    /// upgrade) to the handlers behind this one.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.deadline.cancel()
        self.context = nil
        // Removed as the channel closes: nothing is handed on.
        guard context.channel.isActive else { return }
        if case .stopped = self.state { return }
        if let leftover = self.buffer, leftover.readableBytes > 0 {
            self.buffer = nil
            context.fireChannelRead(NIOAny(leftover))
            context.fireChannelReadComplete()
        }
        if self.inputClosedPending {
            self.inputClosedPending = false
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.stop()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .stopped = self.state { return }
        let bytes = self.unwrapInboundIn(data)
        if var buffer = self.buffer {
            self.buffer = nil
            buffer.writeImmutableBuffer(bytes)
            self.buffer = buffer
        } else {
            self.buffer = bytes
        }
        if case .reading = self.state, self.decoder.awaitsHead, self.deadline.headStarted == nil {
            self.deadline.headBegins(on: context.eventLoop)
        }
        self.decode(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            self.inputClosedPending = true
            self.decode(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Whether bytes wait here that were received and not yet decoded (a pipelined request,
    /// while the exchange before it is in progress).
    var hasUndecodedBytes: Bool {
        (self.buffer?.readableBytes ?? 0) > 0
    }

    /// The exchange whose request this handler passed on is over: decode the next request (it
    /// may be waiting in the buffer already), timing its head from now or from its first byte.
    func awaitNextHead() {
        guard case .awaitingExchangeEnd = self.state, let context = self.context else { return }
        self.state = .reading
        if let buffer = self.buffer, buffer.readableBytes > 0 {
            self.deadline.headBegins(on: context.eventLoop)
        } else {
            self.deadline.headEnded()
        }
        self.decode(context: context)
    }

    /// Passes on what the buffer holds, request part by request part, until it needs more
    /// bytes or a request's end makes it wait for its exchange.
    private func decode(context: ChannelHandlerContext) {
        if self.decoding { return }
        self.decoding = true
        defer { self.decoding = false }
        while case .reading = self.state {
            // No bytes may still be an event: the end of a request whose last body byte came.
            var buffer = self.buffer ?? Self.noBytes
            self.buffer = nil
            let event = self.decoder.next(&buffer)
            if buffer.readableBytes > 0 { self.buffer = buffer }
            switch event {
            case .head(let head, let bytes):
                self.deadline.headEnded()
                context.fireChannelRead(self.wrapInboundOut(.head(head.makeHTTPRequestHead(from: bytes))))
            case .body(let part):
                context.fireChannelRead(self.wrapInboundOut(.body(part)))
            case .end(let trailers):
                self.state = .awaitingExchangeEnd
                context.fireChannelRead(self.wrapInboundOut(.end(trailers)))
            case .needMoreData:
                self.passInputClosedIfDue(context: context)
                return
            case .headTooLarge:
                let limit = self.decoder.maxHeadBytes
                self.reject(
                    context: context,
                    status: .requestHeaderFieldsTooLarge,
                    detail: "the request head is larger than the \(limit) bytes the limits allow",
                    linger: true
                )
            case .refused(let error):
                self.refuse(error, context: context)
            }
        }
        if case .reading = self.state { self.passInputClosedIfDue(context: context) }
    }

    /// The client's half-close, once every byte before it is decoded: a request it cut short is
    /// refused; otherwise the gateway's handler answers what it has and closes.
    private func passInputClosedIfDue(context: ChannelHandlerContext) {
        guard self.inputClosedPending, case .reading = self.state else { return }
        self.inputClosedPending = false
        if let error = self.decoder.inputEnded(leaving: self.buffer ?? ByteBuffer()) {
            self.refuse(error, context: context)
            return
        }
        self.buffer = nil
        context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
    }

    private func refuse(_ error: HTTP1ParseError, context: ChannelHandlerContext) {
        self.stop()
        context.fireErrorCaught(error)
    }

    private func stop() {
        self.state = .stopped
        self.buffer = nil
        self.inputClosedPending = false
        self.deadline.cancel()
    }

    /// Answers on the raw connection (no complete head reached the gateway's handler) with a
    /// problem document and closes. With `linger`, what the client still sends meanwhile is
    /// read and discarded first (``LingeringCloseHandler``): the rest of an oversized head is on
    /// its way; a client that timed out is not sending.
    private func reject(context: ChannelHandlerContext, status: HTTPResponseStatus, detail: String, linger: Bool) {
        self.stop()
        ProblemDetails.answerRawAndClose(context: context, status: status, detail: detail, linger: linger)
    }
}

@available(*, unavailable)
extension HTTP1RequestDecodingHandler: Sendable {}
