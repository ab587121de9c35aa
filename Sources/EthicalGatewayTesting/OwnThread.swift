import Foundation

/// Runs a blocking wait (a `poll` loop, a blocking read) on a thread of its own and resumes the
/// caller with its result. Swift's concurrency pool has as many threads as cores (two here); a
/// test blocking one of them stalls every other test running meanwhile.
func onOwnThread<Value: Sendable>(_ body: @escaping @Sendable () -> Value) async -> Value {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}
