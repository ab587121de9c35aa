public import Foundation

/// The real curl reading a response that does not end (Server-Sent Events, HTTP streaming),
/// line by line as it arrives; always stopped by its PID.
public final class CurlStream: @unchecked Sendable {
    private let process = Process()
    private let output = Pipe()
    private let lock = NSLock()
    private var received = Data()
    private var finished = false

    /// Starts `curl -sS -k -N` (no buffering, TLS verification off) on `url` with `arguments`
    /// (`--http2`, `-i`, `-d`, `-H`, ...).
    public init(_ url: String, _ arguments: [String] = []) throws {
        self.process.executableURL = URL(fileURLWithPath: try ProcessRunner.locate("curl"))
        self.process.arguments = ["-sS", "-k", "-N", "--max-time", "120"] + arguments + [url]
        self.process.standardOutput = self.output
        self.process.standardError = FileHandle.nullDevice
        self.process.standardInput = FileHandle.nullDevice
        try self.process.run()
    }

    deinit {
        self.stop()
    }

    /// The next line (without its `\n`, a `\r` before it kept), waiting at most `timeout`
    /// seconds; nil when the response ended (curl exited) with no line left.
    public func nextLine(timeout: TimeInterval = 30) async throws -> String? {
        try await onOwnThread { Result { try self.blockingNextLine(timeout: timeout) } }.get()
    }

    /// The next line that starts with `prefix`, with the prefix removed; lines before it are
    /// skipped. Nil when the response ended first.
    public func nextLine(startingWith prefix: String, timeout: TimeInterval = 30) async throws -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else {
                throw ProcessRunnerError(message: "curl received no line starting with \(prefix) within \(timeout)s")
            }
            guard let line = try await self.nextLine(timeout: remaining) else { return nil }
            if line.hasPrefix(prefix) { return String(line.dropFirst(prefix.count)) }
        }
    }

    private func blockingNextLine(timeout: TimeInterval) throws -> String? {
        let handle = self.output.fileHandleForReading
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let line = self.takeLine() { return line }
            if self.isFinished { return nil }
            guard Date() < deadline else {
                throw ProcessRunnerError(message: "curl received no line within \(timeout)s")
            }
            var poller = pollfd(fd: handle.fileDescriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else { continue }
            let chunk = handle.availableData
            self.lock.withLock {
                if chunk.isEmpty { self.finished = true } else { self.received.append(chunk) }
            }
        }
    }

    private var isFinished: Bool { self.lock.withLock { self.finished } }

    private func takeLine() -> String? {
        self.lock.withLock {
            guard let newline = self.received.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
            let line = String(decoding: self.received[self.received.startIndex..<newline], as: UTF8.self)
            self.received.removeSubrange(self.received.startIndex...newline)
            return line
        }
    }

    /// Stops curl by its PID (SIGTERM, then SIGKILL after 5 s), without blocking the caller's thread.
    public func stop() {
        self.process.stopByPID()
    }
}
