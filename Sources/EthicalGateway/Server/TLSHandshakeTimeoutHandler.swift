import CoreMetrics
import NIOCore
import NIOTLS

/// Closes a connection whose TLS handshake has not completed within the header-read timeout,
/// so a client cannot hold a socket by opening TCP and never saying hello; counts each
/// handshake's outcome once (`gateway_tls_handshakes_total{listener,result}`): `success`,
/// `failure` (an error, or the client left), `timeout`.
final class TLSHandshakeTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let timeout: TimeAmount
    private let counters: TLSHandshakeCounters?
    private var timer: Scheduled<Void>?
    private var counted = false

    init(timeout: TimeAmount, counters: TLSHandshakeCounters? = nil) {
        self.timeout = timeout
        self.counters = counters
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleTask(in: self.timeout) {
            let (handler, context) = loopBound.value
            handler.count(\.timeout)
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        context.fireUserInboundEventTriggered(event)
        if case TLSUserEvent.handshakeCompleted = event {
            self.count(\.success)
            self.timer?.cancel()
            self.timer = nil
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.count(\.failure)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.count(\.failure)
        context.fireChannelInactive()
    }

    private func count(_ outcome: KeyPath<TLSHandshakeCounters, Counter>) {
        guard !self.counted, let counters = self.counters else { return }
        self.counted = true
        counters[keyPath: outcome].increment()
    }
}

/// The `gateway_tls_handshakes_total` counters of one listener, made once per listener.
struct TLSHandshakeCounters: Sendable {
    let success: Counter
    let failure: Counter
    let timeout: Counter

    init(listener: String, factory: any MetricsFactory) {
        func counter(_ result: String) -> Counter {
            Counter(
                label: "gateway_tls_handshakes_total",
                dimensions: [("listener", listener), ("result", result)],
                factory: factory
            )
        }
        self.success = counter("success")
        self.failure = counter("failure")
        self.timeout = counter("timeout")
    }
}

@available(*, unavailable)
extension TLSHandshakeTimeoutHandler: Sendable {}
