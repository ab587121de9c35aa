import NIOCore
import NIOHTTP1

// MARK: Protocol upgrades (WebSocket): the 101, then the connection is handed over

extension GatewayHTTPHandler {
    var canUpgrade: Bool { !self.isHTTP2 }

    func upgrade(_ head: HTTPResponseHead, exchangeID: UInt64, handOver: @escaping (any Channel) -> Void) -> Bool {
        guard let exchange = self.current, exchange.id == exchangeID, self.context != nil else { return false }
        switch self.machine.upgradeRequested() {
        case .refuse:
            return false
        case .upgradeAfterRequestEnd:
            // The request's end is still in the decoder: switch once it has passed, so no HTTP
            // part reaches the new protocol's handlers.
            exchange.pendingUpgrade = (head, handOver)
            return true
        case .upgradeNow:
            self.performUpgrade(head, exchange: exchange, handOver: handOver)
            return true
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
        // after the new owner's handlers are in place.
        let pipeline = context.pipeline.syncOperations
        let channel = context.channel
        do {
            if let guardHandler = self.headGuard { pipeline.removeHandler(guardHandler, promise: nil) }
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            pipeline.removeHandler(context: context, promise: nil)
            handOver(channel)
            // Whatever the new protocol does not consume of a half-close ends the connection.
            try pipeline.addHandler(CloseOnInputClosedHandler())
            pipeline.removeHandler(decoder, promise: nil)
        } catch {
            self.logger.warning("upgrade failed", metadata: ["error": "\(error)"])
            channel.close(promise: nil)
        }
    }
}
