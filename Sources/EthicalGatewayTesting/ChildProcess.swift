public import Foundation

/// A helper program running beside a test (an independent server, say) that announces itself
/// on its first line of output; always stopped by its PID.
public final class ChildProcess: @unchecked Sendable {
    private let process = Process()
    private let output = Pipe()

    /// Starts `executable` with `arguments`.
    public init(_ executable: String, _ arguments: [String]) throws {
        self.process.executableURL = URL(fileURLWithPath: try ProcessRunner.locate(executable))
        self.process.arguments = arguments
        self.process.standardOutput = self.output
        self.process.standardError = FileHandle.nullDevice
        self.process.standardInput = FileHandle.nullDevice
        try self.process.run()
    }

    deinit {
        self.stop()
    }

    /// The first line the program prints, waiting at most `timeout` seconds (on a thread of its
    /// own, not one of the concurrency pool's few threads).
    public func firstLine(timeout: TimeInterval = 10) async throws -> String {
        try await onOwnThread { Result { try self.blockingFirstLine(timeout: timeout) } }.get()
    }

    private func blockingFirstLine(timeout: TimeInterval) throws -> String {
        let handle = self.output.fileHandleForReading
        var received = Data()
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var poller = pollfd(fd: handle.fileDescriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else { continue }
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            received.append(chunk)
            if let newline = received.firstIndex(of: UInt8(ascii: "\n")) {
                return String(decoding: received[..<newline], as: UTF8.self)
            }
        }
        throw ProcessRunnerError(
            message: "\(self.process.executableURL?.path ?? "child") printed no line within \(timeout)s"
        )
    }

    /// Stops the program by its PID (SIGTERM, then SIGKILL after 5 s), without blocking the caller's thread.
    public func stop() {
        self.process.stopByPID()
    }
}
