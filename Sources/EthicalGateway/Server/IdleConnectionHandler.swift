import NIOCore

/// Closes a connection after `timeout` without reads or writes.
///
/// Cheaper than `IdleStateHandler` followed by a closer: traffic only sets a flag (no clock
/// reads per event), and a timer every half timeout checks the flag, so a connection is closed
/// between one and one and a half timeouts after its last traffic.
///
/// A connection with a request in flight is never idle, however quiet: a proxied request may
/// wait up to its route's `firstByteSeconds` for the upstream, and the proxy's own timeouts
/// answer it (504) when that is too long. ``GatewayHTTPHandler`` reports its exchanges here
/// (on HTTP/2, the streams report to their connection's handler).
final class IdleConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny

    private let checkInterval: TimeAmount
    private var sawTraffic = false
    private var quietChecks = 0
    private var timer: Scheduled<Void>?
    /// Requests started and not yet finished on this connection.
    private var exchangesInFlight = 0

    /// A request started on this connection (or one of its HTTP/2 streams).
    func exchangeStarted() { self.exchangesInFlight += 1 }

    /// A request reported by ``exchangeStarted()`` is over.
    func exchangeEnded() { self.exchangesInFlight -= 1 }

    init(timeout: TimeAmount) {
        self.checkInterval = .nanoseconds(max(timeout.nanoseconds / 2, 1))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.schedule(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.sawTraffic = true
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        self.sawTraffic = true
        context.write(data, promise: promise)
    }

    private func schedule(context: ChannelHandlerContext) {
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(in: self.checkInterval) {
            if self.sawTraffic || self.exchangesInFlight > 0 {
                self.sawTraffic = false
                self.quietChecks = 0
            } else {
                self.quietChecks += 1
                if self.quietChecks >= 2 {
                    context.close(promise: nil)
                    return
                }
            }
            self.schedule(context: context)
        }
    }
}

@available(*, unavailable)
extension IdleConnectionHandler: Sendable {}
