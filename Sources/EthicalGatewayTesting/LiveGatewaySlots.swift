import Foundation

/// Bounds how many in-process gateways of a test run are up at once. They all share the
/// process's event loops (`MultiThreadedEventLoopGroup.singleton`, one per core) and Swift's
/// concurrency pool (one thread per core): with every live test of a full run started at once
/// (over 400 tests on two cores), a request could wait 20 s for a loop and tests failed on
/// timings that hold with a few dozen running. Waiting for a slot blocks no thread, and a test
/// that already holds one (a gateway started inside another's body) does not wait again.
actor LiveGatewaySlots {
    /// Four gateways per core.
    static let shared = LiveGatewaySlots(count: max(4, ProcessInfo.processInfo.activeProcessorCount * 4))

    /// Whether the current task (or a task it started) holds a slot.
    @TaskLocal static var isHeld = false

    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(count: Int) {
        self.free = count
    }

    /// Runs `body` holding a slot (taken first unless the task holds one already).
    static func holding<Result: Sendable>(_ body: () async throws -> Result) async throws -> Result {
        if Self.isHeld { return try await body() }
        await Self.shared.acquire()
        do {
            let result = try await Self.$isHeld.withValue(true) { try await body() }
            await Self.shared.release()
            return result
        } catch {
            await Self.shared.release()
            throw error
        }
    }

    private func acquire() async {
        if self.free > 0 {
            self.free -= 1
            return
        }
        await withCheckedContinuation { self.waiting.append($0) }
    }

    private func release() {
        if self.waiting.isEmpty {
            self.free += 1
        } else {
            self.waiting.removeFirst().resume()
        }
    }
}
