import HTTP1Codec
import NIOCore
import NIOHTTP1

/// Receives what an upstream connection delivers while it serves one exchange (the
/// ``ProxyExchange``; a test records the parts instead).
protocol UpstreamConnectionDelegate: AnyObject {
    func upstreamReceived(_ part: HTTPClientResponsePart)
    func upstreamReadComplete()
    func upstreamWritabilityChanged(isWritable: Bool)
    func upstreamClosed(error: (any Error)?)
}

/// The upstream end of an upstream connection's pipeline: reads the upstream's responses with
/// the gateway's own decoder (``HTTP1ResponseDecoder``) and hands their parts straight to the
/// exchange using the connection; while the connection idles in the pool, notices when the
/// upstream closes it.
///
/// It replaces NIO's `HTTPResponseDecoder` (llhttp behind a `ByteToMessageHandler`) and the
/// handler that sat behind it: parts go to the exchange by a direct call, not down the pipeline
/// (no `NIOAny` box per part, one handler fewer on every read). The connection's `autoRead` is off: the exchange asks for reads only when the client
/// can take more, which bounds memory for any response size.
///
/// Each request written is announced with ``expectResponse(toHEAD:)`` (by
/// ``UpstreamConnection/write(_:)``), so a response to `HEAD` is read without a body. A
/// response the decoder refuses (or bytes while no request waits) closes the connection, and
/// the exchange learns why from ``UpstreamConnectionDelegate/upstreamClosed(error:)`` with the
/// ``HTTP1ParseError``. After a `101` nothing more is decoded: the bytes behind its head stay
/// here, and go on to the handlers behind this one (the tunnel) when it is removed.
final class UpstreamConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The largest response head (and trailer section) accepted. NIO's decoder, which read
    /// responses before, allowed 80 KiB of header fields; this counts the head's bytes.
    static let maxHeadBytes = 80 * 1024

    private static let noBytes = ByteBuffer()

    weak var delegate: (any UpstreamConnectionDelegate)?
    /// Called when the connection closes while idle in the pool.
    var onIdleClose: (() -> Void)?
    private var decoder = HTTP1ResponseDecoder(maxHeadBytes: UpstreamConnectionHandler.maxHeadBytes)
    /// Bytes received and not yet decoded (nil when there are none).
    private var buffer: ByteBuffer?
    private var closeError: (any Error)?
    /// Set while the decoding loop runs: a close from inside it is ours, not the upstream's EOF.
    private var decoding = false
    /// The connection is closing (a refusal, or the channel went inactive): nothing more is read.
    private var stopped = false

    /// Whether the connection can carry another request after the response whose head was
    /// handed on last (``HTTP1ResponseDecoder/endsConnection``): what the exchange decides reuse
    /// on, without scanning the head's `Connection` fields again.
    private(set) var responseKeepsConnection = false

    /// A request was written on the connection; its response comes after the earlier ones'.
    func expectResponse(toHEAD: Bool) {
        self.decoder.expectResponse(toHEAD: toHEAD)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if self.stopped { return }
        let bytes = self.unwrapInboundIn(data)
        if var buffer = self.buffer {
            self.buffer = nil
            buffer.writeImmutableBuffer(bytes)
            self.buffer = buffer
        } else {
            self.buffer = bytes
        }
        self.decode(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.delegate?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.closeError == nil { self.closeError = error }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !self.stopped && !self.decoding {
            // The upstream closed: the end of a body it delimits, or a response cut short.
            switch self.decoder.inputEnded(leaving: self.buffer ?? Self.noBytes) {
            case .end(let trailers): self.deliver(.end(trailers), context: context)
            case .refused(let error): if self.closeError == nil { self.closeError = error }
            default: break
            }
        }
        self.stopped = true
        self.buffer = nil
        if let delegate = self.delegate {
            self.delegate = nil
            delegate.upstreamClosed(error: self.closeError)
        } else {
            self.onIdleClose?()
        }
    }

    /// Hands what was received and not decoded (the new protocol's first bytes, after a 101) to
    /// the handlers behind this one.
    func handlerRemoved(context: ChannelHandlerContext) {
        guard context.channel.isActive, !self.stopped, let leftover = self.buffer, leftover.readableBytes > 0 else {
            return
        }
        self.buffer = nil
        context.fireChannelRead(self.wrapInboundOut(leftover))
        context.fireChannelReadComplete()
    }

    /// Passes on what the buffer holds, response part by response part, until it needs more bytes.
    private func decode(context: ChannelHandlerContext) {
        if self.decoding { return }
        self.decoding = true
        defer { self.decoding = false }
        while !self.stopped {
            // No bytes may still be an event: the end of a response whose last body byte came.
            var buffer = self.buffer ?? Self.noBytes
            self.buffer = nil
            let event = self.decoder.next(&buffer)
            if buffer.readableBytes > 0 { self.buffer = buffer }
            switch event {
            case .head(let head, let bytes):
                // Interim responses (100 Continue, 103 Early Hints) are not relayed.
                if head.isInterim { continue }
                self.responseKeepsConnection = !self.decoder.endsConnection
                self.deliver(.head(head.makeHTTPResponseHead(from: bytes)), context: context)
            case .body(let part):
                self.deliver(.body(part), context: context)
            case .end(let trailers):
                self.deliver(.end(trailers), context: context)
            case .needMoreData:
                return
            case .refused(let error):
                self.stopped = true
                self.buffer = nil
                if self.closeError == nil { self.closeError = error }
                context.close(promise: nil)
            }
        }
    }

    private func deliver(_ part: HTTPClientResponsePart, context: ChannelHandlerContext) {
        guard let delegate = self.delegate else {
            // A response no exchange waits for: the upstream is not speaking HTTP/1.1 as agreed.
            self.stopped = true
            self.buffer = nil
            context.close(promise: nil)
            return
        }
        delegate.upstreamReceived(part)
    }
}

@available(*, unavailable)
extension UpstreamConnectionHandler: Sendable {}
