import NIOCore

/// Closes a connection after `timeout` without reads or writes.
///
/// Cheaper than `IdleStateHandler` followed by a closer: traffic only sets a flag (no clock
/// reads per event), and a timer every half timeout checks the flag, so a connection is closed
/// between one and one and a half timeouts after its last traffic.
final class IdleConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny

    private let checkInterval: TimeAmount
    private var sawTraffic = false
    private var quietChecks = 0
    private var timer: Scheduled<Void>?

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
            if self.sawTraffic {
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
