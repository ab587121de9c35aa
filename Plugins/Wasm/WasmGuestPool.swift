/// Idle instances of one guest on one event loop.
///
/// Lives in a `NIOLoopBoundBox`, so it is only ever touched on its loop: an instance is never
/// shared across loops, and taking one never waits for a lock.
final class WasmGuestPool {
    let module: WasmGuestModule
    private var idle: [WasmGuest] = []

    init(module: WasmGuestModule) {
        self.module = module
    }

    /// An idle instance, or a new one.
    func take() throws -> WasmGuest {
        if let guest = self.idle.popLast() { return guest }
        return try WasmGuest(module: self.module)
    }

    /// Returns an instance that finished its request cleanly. One that failed is dropped, since
    /// its memory may be in any state.
    func putBack(_ guest: WasmGuest) {
        guard self.idle.count < self.module.limits.idleInstancesPerLoop else { return }
        self.idle.append(guest)
    }
}
