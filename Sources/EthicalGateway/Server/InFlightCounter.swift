import NIOCore

/// Requests in flight on one event loop that started on one runtime: what a reload waits for
/// before it shuts down the backends it retired. Read and written only on its event loop, so
/// counting a request costs no lock or atomic.
final class InFlightCounter: @unchecked Sendable {
    let eventLoop: any EventLoop
    /// Only on ``eventLoop``.
    var count = 0

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// The count, read on its loop.
    func read() async -> Int {
        (try? await self.eventLoop.submit { self.count }.get()) ?? 0
    }
}
