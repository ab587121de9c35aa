import NIOCore
import NIOHTTP1

/// Receives what an upstream connection delivers while it serves one exchange.
protocol UpstreamConnectionDelegate: AnyObject {
    func upstreamReceived(_ part: HTTPClientResponsePart)
    func upstreamReadComplete()
    func upstreamWritabilityChanged(isWritable: Bool)
    func upstreamClosed(error: (any Error)?)
}

/// The last handler of an upstream connection's pipeline: hands response parts to the exchange
/// using the connection, and while the connection idles in the pool, notices when the upstream
/// closes it. The connection's `autoRead` is off: the exchange asks for reads only when the
/// client can take more, which bounds memory for any response size.
final class UpstreamConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    weak var delegate: (any UpstreamConnectionDelegate)?
    private var closeError: (any Error)?
    /// Called when the connection closes while idle in the pool.
    var onIdleClose: (() -> Void)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        guard let delegate = self.delegate else {
            // Bytes on an idle connection: the upstream is not speaking HTTP/1.1 as agreed.
            context.close(promise: nil)
            return
        }
        delegate.upstreamReceived(part)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.delegate?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.closeError = error
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let delegate = self.delegate {
            self.delegate = nil
            delegate.upstreamClosed(error: self.closeError)
        } else {
            self.onIdleClose?()
        }
    }
}

@available(*, unavailable)
extension UpstreamConnectionHandler: Sendable {}

/// One keep-alive connection to an upstream, owned by one event loop. Marked `Sendable` only so
/// it can travel in that loop's futures; it is never touched from another thread.
final class UpstreamConnection: @unchecked Sendable {
    let channel: any Channel
    let handler: UpstreamConnectionHandler
    let encoder: UpstreamRequestEncoder
    let upstream: Upstream
    /// Requests this connection has carried; a pooled connection that fails before answering
    /// its next request is retried on a fresh one.
    var requestsServed = 0
    /// When the connection last went back to the pool; the loop's sweeper closes it after the
    /// pool's idle timeout (no timer per request).
    var idleSince = NIODeadline.now()

    /// The head written down the pipeline for the response decoder (only its method counts;
    /// see ``UpstreamRequestEncoder``), kept while requests repeat the method.
    private var placeholder: HTTPRequestHead?

    init(channel: any Channel, handler: UpstreamConnectionHandler, encoder: UpstreamRequestEncoder, upstream: Upstream)
    {
        self.channel = channel
        self.handler = handler
        self.encoder = encoder
        self.upstream = upstream
    }

    /// Writes `head` (not flushed): its bytes staged with the encoder, its method through the
    /// response decoder.
    func write(_ head: UpstreamRequestHead) {
        let placeholder: HTTPRequestHead
        if let cached = self.placeholder, cached.method == head.method {
            placeholder = cached
        } else {
            placeholder = HTTPRequestHead(version: .http1_1, method: head.method, uri: "")
            self.placeholder = placeholder
        }
        self.encoder.stage(head)
        self.channel.write(HTTPClientRequestPart.head(placeholder), promise: nil)
    }
}
