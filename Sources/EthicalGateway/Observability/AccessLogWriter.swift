import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Writes access-log lines without blocking an event loop or taking a lock per request: each
/// loop appends its lines to its own buffer, which is handed to the I/O thread pool at most every
/// ``flushInterval`` (or when it passes ``flushBytes``); the writes of one loop stay in order,
/// and every write holds whole lines (the file is opened with `O_APPEND`).
///
/// Opened by the runtime's `start` step, closed (after a last flush) when the runtime that owns
/// it is retired or the gateway stops.
final class AccessLogWriter: Sendable {
    static let flushInterval = TimeAmount.milliseconds(100)
    static let flushBytes = 32 * 1024

    let configuration: AccessLogConfiguration
    private let file: URL?
    private let descriptor = NIOLockedValueBox<CInt?>(nil)
    private let buffers: [ObjectIdentifier: LoopBuffer]
    private let threadPool: NIOThreadPool

    /// One loop's pending lines; touched only on that loop.
    final class LoopBuffer: @unchecked Sendable {
        let eventLoop: any EventLoop
        var pending: [UInt8] = []
        var flushScheduled = false
        /// The last write handed to the thread pool: the next one waits for it.
        var lastWrite: EventLoopFuture<Void>?
        /// xorshift state for sampling.
        var random: UInt64

        init(eventLoop: any EventLoop) {
            self.eventLoop = eventLoop
            self.random = UInt64.random(in: 1...UInt64.max)
        }
    }

    init(
        _ configuration: AccessLogConfiguration,
        configDirectory: URL,
        eventLoopGroup: any EventLoopGroup,
        threadPool: NIOThreadPool = .singleton
    ) {
        self.configuration = configuration
        switch configuration.output {
        case "stdout", "stderr": self.file = nil
        default: self.file = resolveConfigPath(configuration.output, relativeTo: configDirectory)
        }
        var buffers: [ObjectIdentifier: LoopBuffer] = [:]
        for eventLoop in eventLoopGroup.makeIterator() {
            buffers[ObjectIdentifier(eventLoop)] = LoopBuffer(eventLoop: eventLoop)
        }
        self.buffers = buffers
        self.threadPool = threadPool
    }

    /// Opens the output (the file for appending, created with mode 0640 if missing).
    func open() throws {
        let descriptor: CInt
        if let file = self.file {
            descriptor = Glibc.open(file.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            guard descriptor >= 0 else {
                throw ConfigIssueError(
                    ConfigIssue(
                        path: "$.accessLog.output",
                        message: "cannot open \(file.path) for appending: \(String(cString: strerror(errno)))"
                    )
                )
            }
        } else {
            descriptor = dup(self.configuration.output == "stderr" ? STDERR_FILENO : STDOUT_FILENO)
        }
        self.descriptor.withLockedValue { $0 = descriptor }
    }

    /// Whether a response with `status` is logged, by the sample rate (5xx always); on the loop.
    func sample(status: UInt, on eventLoop: any EventLoop) -> Bool {
        if self.configuration.sampleRate >= 1 || status >= 500 { return true }
        guard let buffer = self.buffers[ObjectIdentifier(eventLoop)] else { return true }
        buffer.random ^= buffer.random << 13
        buffer.random ^= buffer.random >> 7
        buffer.random ^= buffer.random << 17
        return Double(buffer.random >> 11) / Double(1 << 53) < self.configuration.sampleRate
    }

    /// Appends one line (UTF-8, with its newline); on `eventLoop`.
    func append(_ line: [UInt8], on eventLoop: any EventLoop) {
        guard let buffer = self.buffers[ObjectIdentifier(eventLoop)] else {
            self.write(line, after: nil, on: eventLoop)
            return
        }
        buffer.pending.append(contentsOf: line)
        if buffer.pending.count >= Self.flushBytes {
            self.flush(buffer)
        } else if !buffer.flushScheduled {
            buffer.flushScheduled = true
            eventLoop.assumeIsolated().scheduleTask(in: Self.flushInterval) { self.flush(buffer) }
        }
    }

    private func flush(_ buffer: LoopBuffer) {
        buffer.flushScheduled = false
        guard !buffer.pending.isEmpty else { return }
        let bytes = buffer.pending
        buffer.pending.removeAll(keepingCapacity: true)
        buffer.lastWrite = self.write(bytes, after: buffer.lastWrite, on: buffer.eventLoop)
    }

    @discardableResult
    private func write(
        _ bytes: [UInt8],
        after previous: EventLoopFuture<Void>?,
        on eventLoop: any EventLoop
    )
        -> EventLoopFuture<Void>
    {
        let start = previous ?? eventLoop.makeSucceededVoidFuture()
        return start.flatMap {
            self.threadPool.runIfActive(eventLoop: eventLoop) {
                guard let descriptor = self.descriptor.withLockedValue({ $0 }) else { return }
                bytes.withUnsafeBytes { raw in
                    var offset = 0
                    while offset < raw.count {
                        let written = Glibc.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                        if written < 0 && errno == EINTR { continue }
                        guard written > 0 else { return }
                        offset += written
                    }
                }
            }
        }
    }

    /// Writes what every loop has pending, then closes the output.
    func close() async {
        for buffer in self.buffers.values {
            let last = try? await buffer.eventLoop.submit { () -> EventLoopFuture<Void>? in
                self.flush(buffer)
                return buffer.lastWrite
            }.get()
            try? await last?.get()
        }
        let descriptor = self.descriptor.withLockedValue { value in
            defer { value = nil }; return value
        }
        if let descriptor { Glibc.close(descriptor) }
    }
}
