import NIOCore

/// Closes a connection after a response that ends it, the way nginx's `lingering_close` does:
/// first only the sending side, so the client reads the whole response, then the rest once the
/// client closes its side or after ``maximum``.
///
/// Closing both sides at once while the client is still sending (a head the gateway refused, an
/// unread body) makes the kernel answer with a reset, and the client may lose the response it
/// was about to read.
enum LingeringClose {
    /// The longest the gateway keeps reading (and discarding) after its response.
    static let maximum = TimeAmount.seconds(Int64(2))

    /// Half-closes `channel` now and closes it fully within ``maximum``. Inbound data must be
    /// discarded by the caller's handler meanwhile.
    static func close(_ channel: any Channel) {
        let halfClosed = channel.eventLoop.makePromise(of: Void.self)
        channel.close(mode: .output, promise: halfClosed)
        halfClosed.futureResult.whenComplete { result in
            guard case .success = result else {
                channel.close(promise: nil)
                return
            }
            channel.eventLoop.scheduleTask(in: Self.maximum) { channel.close(promise: nil) }
        }
    }
}
