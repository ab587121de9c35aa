import NIOCore

/// The header-read timeout of one HTTP/1 connection: a head must be complete within it from
/// its first byte (or from the connection's start), so slow clients cannot hold a connection
/// open by trickling header bytes.
///
/// One timer per connection, not one per request: a head's first byte only notes the time, and
/// the timer, when it fires, checks the head being awaited against its own deadline and re-arms
/// for it. Scheduling and cancelling a timer for every request cost about 4% of a proxied
/// request's instructions. Used by ``HTTP1RequestDecodingHandler`` and ``RequestHeadGuard``.
final class HeaderReadDeadline {
    private let timeout: TimeAmount
    /// When the head being awaited started; nil while no head is under way.
    private(set) var headStarted: NIODeadline?
    /// Fires at the deadline of the head that was under way when it was armed; nil when none is armed.
    private var timer: Scheduled<Void>?
    /// Called when a head is still under way at its deadline.
    private let expired: () -> Void

    init(timeout: TimeAmount, expired: @escaping () -> Void) {
        self.timeout = timeout
        self.expired = expired
    }

    /// A new connection must send its first head in time, even if it sends nothing at all: the
    /// first head is under way from the moment the channel is active. Call from the handler's
    /// `handlerAdded` and `channelActive`, whichever finds the channel active first.
    func connectionMayStart(_ channel: any Channel) {
        if channel.isActive && self.headStarted == nil { self.headBegins(on: channel.eventLoop) }
    }

    /// A head is under way from now: note the time, and arm the timer unless it is armed (it
    /// then re-arms for this head when it fires).
    func headBegins(on eventLoop: any EventLoop) {
        // The loop's clock: the real one, or an embedded loop's own in tests.
        let started = eventLoop.now
        self.headStarted = started
        if self.timer == nil { self.arm(at: started + self.spreadTimeout, on: eventLoop) }
    }

    /// No head is under way (one completed, or the connection waits for its exchange).
    func headEnded() {
        self.headStarted = nil
    }

    func cancel() {
        self.timer?.cancel()
        self.timer = nil
        self.headStarted = nil
    }

    /// The header-read timeout, up to 10% shorter, differing per connection: connections opened
    /// together (a slowloris flood) would otherwise all be cut, and reconnect, in the same
    /// instant, again and again; spread out, the cuts cost other clients no latency spike. The
    /// spread comes from this object's identity through the process's seeded hasher, not from
    /// `Double.random`, which costs a getrandom system call per connection.
    private var spreadTimeout: TimeAmount {
        let fraction = Double(UInt16(truncatingIfNeeded: ObjectIdentifier(self).hashValue)) / Double(UInt16.max)
        return .nanoseconds(Int64(Double(self.timeout.nanoseconds) * (1 - 0.1 * fraction)))
    }

    private func arm(at deadline: NIODeadline, on eventLoop: any EventLoop) {
        self.timer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timer = nil
            guard let started = self.headStarted else { return }
            // The head under way may have begun after the one this timer was armed for.
            let deadline = started + self.spreadTimeout
            if eventLoop.now >= deadline {
                self.expired()
            } else {
                self.arm(at: deadline, on: eventLoop)
            }
        }
    }
}

@available(*, unavailable)
extension HeaderReadDeadline: Sendable {}
