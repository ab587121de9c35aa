import Foundation

extension Process {
    /// Stops the program by its PID: SIGTERM now, then, on a thread of its own, SIGKILL if it
    /// has not exited within `graceSeconds`, and the wait for its exit. `stop()` methods run in
    /// `defer` on Swift's concurrency pool, which has as many threads as cores (two here): a
    /// blocking wait there stalled every other test of a full run meanwhile.
    func stopByPID(graceSeconds: TimeInterval = 5) {
        guard self.isRunning else { return }
        let pid = self.processIdentifier
        kill(pid, SIGTERM)
        let process = UncheckedProcess(process: self)
        Thread {
            let deadline = Date().addingTimeInterval(graceSeconds)
            while process.process.isRunning && Date() < deadline { usleep(10_000) }
            if process.process.isRunning { kill(pid, SIGKILL) }
            process.process.waitUntilExit()
        }.start()
    }
}

/// A `Process` handed to the thread that waits for it; only that thread touches it afterwards.
private struct UncheckedProcess: @unchecked Sendable {
    let process: Process
}
