import NIOCore
import NIOHTTP1

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

    /// The head written down the pipeline for the encoder (only its method counts; see
    /// ``UpstreamRequestEncoder``), kept while requests repeat the method.
    private var placeholder: HTTPRequestHead?

    init(channel: any Channel, handler: UpstreamConnectionHandler, encoder: UpstreamRequestEncoder, upstream: Upstream)
    {
        self.channel = channel
        self.handler = handler
        self.encoder = encoder
        self.upstream = upstream
    }

    /// Writes `head` (not flushed): its bytes staged with the encoder, its method told to the
    /// response decoder.
    func write(_ head: UpstreamRequestHead) {
        let placeholder: HTTPRequestHead
        if let cached = self.placeholder, cached.method == head.method {
            placeholder = cached
        } else {
            placeholder = HTTPRequestHead(version: .http1_1, method: head.method, uri: "")
            self.placeholder = placeholder
        }
        self.handler.expectResponse(toHEAD: head.method == .HEAD)
        self.encoder.stage(head)
        self.channel.write(HTTPClientRequestPart.head(placeholder), promise: nil)
    }
}
