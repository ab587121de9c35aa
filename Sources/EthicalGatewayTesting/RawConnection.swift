public import Foundation

/// A plain TCP connection to a loopback port that sends exactly the bytes a test gives it:
/// malformed requests, slow requests, oversized heads.
///
/// Reads wait on a thread of their own: a blocking wait on one of the few threads of Swift's
/// concurrency pool (two on a two-core machine) would stall every other test running meanwhile.
/// One test uses a connection at a time, hence `@unchecked Sendable`.
public final class RawConnection: @unchecked Sendable {
    private let descriptor: Int32

    /// Connects to `127.0.0.1:port`, giving up after `timeout` seconds.
    public init(port: Int, timeout: TimeInterval = 5) throws {
        self.descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var sendTimeout = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(self.descriptor, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
        guard self.descriptor >= 0 else { throw ProcessRunnerError(message: "socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(self.descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            // No close here: the instance is fully initialized, so its deinit runs when this
            // throws and closes the socket; a second close could close another thread's new file.
            throw ProcessRunnerError(message: "connect to 127.0.0.1:\(port) failed: errno \(errno)")
        }
    }

    deinit {
        close(self.descriptor)
    }

    /// Sends bytes; returns `false` if the peer has closed.
    @discardableResult
    public func send(_ text: String) -> Bool {
        self.send(bytes: Array(text.utf8))
    }

    /// Sends `bytes` as they are (a WebSocket frame, anything not UTF-8); returns `false` if the
    /// peer has closed.
    @discardableResult
    public func send(bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let written = bytes[sent...].withUnsafeBytes {
                Glibc.send(self.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if written <= 0 { return false }
            sent += written
        }
        return true
    }

    /// Sends bytes from a thread of its own: a payload larger than the socket's buffer (a 1 MB
    /// header, three 60 KB bodies) blocks until the gateway reads it, and must not hold one of
    /// the concurrency pool's few threads meanwhile. Returns `false` if the peer has closed.
    @discardableResult
    public func sendOffThread(_ text: String) async -> Bool {
        await onOwnThread { self.send(text) }
    }

    /// Closes the sending side only (a TCP FIN), as `nc` does at the end of its input; the
    /// connection can still read the answers.
    public func finishSending() {
        shutdown(self.descriptor, Int32(SHUT_WR))
    }

    /// Reads until the peer closes or `timeout` passes; returns what arrived and whether the
    /// peer closed the connection.
    public func readUntilClosed(timeout: TimeInterval) async -> (text: String, closed: Bool) {
        await self.read(stoppingAt: nil, timeout: timeout)
    }

    /// Reads until `marker` has arrived (e.g. the end of a response), the peer closes, or `timeout` passes.
    public func read(until marker: String, timeout: TimeInterval) async -> String {
        await self.read(stoppingAt: marker, timeout: timeout).text
    }

    /// Reads until `isComplete` holds for what arrived, the peer closes, or `timeout` passes.
    public func read(
        until isComplete: @escaping @Sendable (String) -> Bool,
        timeout: TimeInterval
    ) async -> (text: String, closed: Bool) {
        await onOwnThread { self.blockingRead(stoppingWhen: isComplete, timeout: timeout) }
    }

    private func read(stoppingAt marker: String?, timeout: TimeInterval) async -> (text: String, closed: Bool) {
        await onOwnThread {
            self.blockingRead(stoppingWhen: { text in marker.map { text.contains($0) } ?? false }, timeout: timeout)
        }
    }

    private func blockingRead(
        stoppingWhen isComplete: (String) -> Bool,
        timeout: TimeInterval
    ) -> (text: String, closed: Bool) {
        var received: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            var poller = pollfd(fd: self.descriptor, events: Int16(POLLIN), revents: 0)
            let remaining = Int32(max(1, deadline.timeIntervalSinceNow * 1000))
            guard poll(&poller, 1, remaining) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return (String(decoding: received, as: UTF8.self), true) }
            received += buffer[0..<count]
            if isComplete(String(decoding: received, as: UTF8.self)) { break }
        }
        return (String(decoding: received, as: UTF8.self), false)
    }
}
