import NIOCore

/// The exchanges' timeouts (first byte, idle) on one timer per event loop instead of timers per
/// exchange: an exchange registers its deadline, and the timer, armed for the earliest deadline,
/// calls the exchanges whose deadline has passed and re-arms for the next one. In the common
/// case (every exchange ends before its deadline) a request costs a dictionary insert and
/// removal, where scheduling and cancelling two timers was 7% of a proxied request's instructions.
extension ProxyLoopState {
    /// Watches `exchange` until its ``ProxyExchange/watchdogDeadline`` (again, when it moved).
    func watch(_ exchange: ProxyExchange) {
        self.watchedExchanges[ObjectIdentifier(exchange)] = exchange
        self.armWatchdog(for: exchange.watchdogDeadline)
    }

    /// Stops watching `exchange`; the timer is left alone (when it fires with nothing due, it
    /// re-arms for what is still watched, or lets go).
    func unwatch(_ exchange: ProxyExchange) {
        self.watchedExchanges.removeValue(forKey: ObjectIdentifier(exchange))
    }

    private func armWatchdog(for deadline: NIODeadline) {
        if self.watchdogTimer != nil && self.watchdogTimerDeadline <= deadline { return }
        self.watchdogTimer?.cancel()
        self.watchdogTimerDeadline = deadline
        self.watchdogTimer = self.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.watchdogsDue()
        }
    }

    private func watchdogsDue() {
        self.watchdogTimer = nil
        let now = NIODeadline.now()
        var due: [ProxyExchange] = []
        var next = NIODeadline.distantFuture
        for exchange in self.watchedExchanges.values {
            if exchange.watchdogDeadline <= now {
                due.append(exchange)
            } else if exchange.watchdogDeadline < next {
                next = exchange.watchdogDeadline
            }
        }
        for exchange in due { self.watchedExchanges.removeValue(forKey: ObjectIdentifier(exchange)) }
        if next < .distantFuture { self.armWatchdog(for: next) }
        // Each may watch itself again (an idle check that found recent traffic).
        for exchange in due { exchange.watchdogFired() }
    }
}
