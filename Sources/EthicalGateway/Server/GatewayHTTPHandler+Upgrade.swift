import NIOCore
import NIOHTTP1

// MARK: Protocol upgrades (WebSocket): the 101, then the connection is handed over (on HTTP/2,
// an extended CONNECT's 200, then the stream)

extension GatewayHTTPHandler {
    /// HTTP/1.1 connections can switch; an HTTP/2 stream can when its request is an extended
    /// CONNECT for a WebSocket (RFC 8441).
    var canUpgrade: Bool { !self.isHTTP2 || self.current?.isExtendedConnect == true }

    func upgrade(_ head: HTTPResponseHead, exchangeID: UInt64, handOver: @escaping (any Channel) -> Void) -> Bool {
        guard let exchange = self.current, exchange.id == exchangeID, self.context != nil else { return false }
        switch self.machine.upgradeRequested(requestIsTunnel: exchange.isExtendedConnect) {
        case .refuse:
            return false
        case .upgradeAfterRequestEnd:
            // The request's end is still in the decoder: switch once it has passed, so no HTTP
            // part reaches the new protocol's handlers.
            exchange.pendingUpgrade = (head, handOver)
            return true
        case .upgradeNow:
            if self.isHTTP2 {
                self.performStreamUpgrade(head, exchange: exchange, handOver: handOver)
            } else {
                self.performUpgrade(head, exchange: exchange, handOver: handOver)
            }
            return true
        }
    }

    /// Answers an extended CONNECT with `200` (RFC 8441 section 5: a `101` from the backend, or
    /// from an HTTP/1.1 upstream, becomes `200`, without the fields HTTP/2 has no use for), takes
    /// HTTP out of the stream's pipeline and hands the stream over as bytes
    /// (``HTTP2StreamTunnelHandler``).
    func performStreamUpgrade(
        _ head: HTTPResponseHead,
        exchange: HTTPExchange,
        handOver: @escaping (any Channel) -> Void
    ) {
        guard let context = self.context, let stream = self.http2Stream else { return }
        var head = head
        head.version = exchange.head.version
        if head.status == .switchingProtocols { head.status = .ok }
        for name in [
            "connection", "upgrade", "keep-alive", "proxy-connection", "transfer-encoding", "sec-websocket-accept",
        ] {
            head.headers.remove(name: name)
        }
        head.headers.replaceOrAdd(name: "x-request-id", value: exchange.requestID)
        exchange.status = head.status.code
        self.current = nil
        context.writeAndFlush(self.wrapOutboundOut(.head(head)), promise: nil)
        let pipeline = context.pipeline.syncOperations
        let channel = context.channel
        do {
            pipeline.removeHandler(stream.headGuard, promise: nil)
            pipeline.removeHandler(stream.codec, promise: nil)
            pipeline.removeHandler(context: context, promise: nil)
            try pipeline.addHandler(HTTP2StreamTunnelHandler())
            handOver(channel)
            // The client's END_STREAM, if the new protocol does not take care of it, ends the stream.
            try pipeline.addHandler(CloseOnInputClosedHandler())
        } catch {
            self.logger.warning("extended CONNECT hand-over failed", metadata: ["error": "\(error)"])
            channel.close(promise: nil)
        }
    }

    /// Sends the `101`, takes HTTP out of the pipeline and hands the connection over.
    func performUpgrade(
        _ head: HTTPResponseHead,
        exchange: HTTPExchange,
        handOver: @escaping (any Channel) -> Void
    ) {
        guard let context = self.context else { return }
        var head = head
        head.version = exchange.head.version
        exchange.status = head.status.code
        self.current = nil
        let added = HTTP1ResponseEncoder.AddedFields(requestID: exchange.requestID)
        guard self.sendHead(head, adding: added, answering: exchange.head.method, context: context) else {
            self.logger.error(
                "upgrade refused: a header field of the 101 holds characters not allowed on the wire",
                metadata: ["request-id": "\(exchange.requestID)"]
            )
            context.close(promise: nil)
            return
        }
        self.sendEnd(nil, context: context, promise: nil)
        context.flush()
        // The 101 is on its way as bytes; take HTTP out of the pipeline. The decoder goes last,
        // after the new owner's handlers are in place: it hands them the bytes that came behind
        // the upgrade's head.
        let pipeline = context.pipeline.syncOperations
        let channel = context.channel
        do {
            pipeline.removeHandler(context: context, promise: nil)
            handOver(channel)
            // Whatever the new protocol does not consume of a half-close ends the connection.
            try pipeline.addHandler(CloseOnInputClosedHandler())
            if let decoder = self.requestDecoder { pipeline.removeHandler(decoder, promise: nil) }
        } catch {
            self.logger.warning("upgrade failed", metadata: ["error": "\(error)"])
            channel.close(promise: nil)
        }
    }
}
