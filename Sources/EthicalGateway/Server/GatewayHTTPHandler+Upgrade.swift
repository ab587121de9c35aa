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
        head.headers.replaceOrAdd(name: "x-request-id", value: exchange.requestID)
        exchange.status = head.status.code
        self.current = nil
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        // The 101 has passed the encoder; take HTTP out of the pipeline. The decoder goes last,
        // after the new owner's handlers are in place.
        let pipeline = context.pipeline.syncOperations
        let channel = context.channel
        do {
            if let guardHandler = self.headGuard { pipeline.removeHandler(guardHandler, promise: nil) }
            pipeline.removeHandler(try pipeline.handler(type: HTTPResponseEncoder.self), promise: nil)
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
