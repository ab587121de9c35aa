import Foundation
import Logging
import NIOCore
import NIOPosix
import RESPClient

#if canImport(Glibc)
    import Glibc

    private let streamSocket = Int32(SOCK_STREAM.rawValue)
#elseif canImport(Darwin)
    import Darwin

    private let streamSocket = SOCK_STREAM
#endif

/// A `redis-server` child process on 127.0.0.1 and a free ephemeral port, for one test.
///
/// Readiness is a bounded PING loop; `stop()` sends SIGTERM, then SIGKILL if the server lingers.
final class RedisTestServer: @unchecked Sendable {
    /// Failures of the helper itself, with the server's log when it has one.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Where the TLS files are when the server speaks only TLS.
    struct TLSFiles {
        let certificate: String
        let key: String
    }

    let port: Int
    let directory: URL
    private let extraArguments: [String]
    private let tls: TLSFiles?
    private var process: Process?

    private init(port: Int, directory: URL, extraArguments: [String], tls: TLSFiles?) {
        self.port = port
        self.directory = directory
        self.extraArguments = extraArguments
        self.tls = tls
    }

    /// Starts a server; `configFile` lines are written to a config file given first (for ACL users).
    static func start(
        extraArguments: [String] = [],
        configFile: [String] = [],
        tls: TLSFiles? = nil
    ) async throws -> RedisTestServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var lastError: (any Error)?
        for _ in 0..<5 {
            let server = RedisTestServer(
                port: try Self.freePort(),
                directory: directory,
                extraArguments: extraArguments,
                tls: tls
            )
            if !configFile.isEmpty {
                try configFile.joined(separator: "\n").write(
                    to: directory.appendingPathComponent("redis.conf"),
                    atomically: true,
                    encoding: .utf8
                )
            }
            do {
                try await server.launch()
                return server
            } catch {
                lastError = error
            }
        }
        throw lastError ?? Failure(description: "redis-server did not start")
    }

    /// The `redis://` URL of the server.
    var url: String { "redis://127.0.0.1:\(self.port)" }

    /// A configuration for this server with short backoff, and generous connect and command
    /// timeouts: the whole suite shares two cores, where a 5 MiB round trip of a debug build
    /// took over the default 2 s. The timeout tests set their own.
    func configuration(url: String? = nil) throws -> RedisClientConfiguration {
        var configuration = RedisClientConfiguration(endpoint: try RedisEndpoint(url: url ?? self.url))
        configuration.reconnectMinBackoff = .milliseconds(20)
        configuration.reconnectMaxBackoff = .milliseconds(200)
        configuration.connectTimeout = .seconds(30)
        configuration.commandTimeout = .seconds(30)
        return configuration
    }

    private func launch() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        var arguments: [String] = []
        let configPath = self.directory.appendingPathComponent("redis.conf").path
        if FileManager.default.fileExists(atPath: configPath) { arguments.append(configPath) }
        arguments += ["--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--dir", self.directory.path]
        if let tls = self.tls {
            arguments += [
                "--port", "0", "--tls-port", "\(self.port)", "--tls-cert-file", tls.certificate, "--tls-key-file",
                tls.key, "--tls-ca-cert-file", tls.certificate, "--tls-auth-clients", "no",
            ]
        } else {
            arguments += ["--port", "\(self.port)"]
        }
        process.arguments = arguments + self.extraArguments
        let log = self.directory.appendingPathComponent("redis.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        self.process = process
        for _ in 0..<250 {
            if !process.isRunning {
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                throw Failure(description: "redis-server exited on port \(self.port): \(text.suffix(600))")
            }
            if Self.isReady(port: self.port, sendPing: self.tls == nil) { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        await self.stop()
        throw Failure(description: "redis-server on port \(self.port) did not answer PING within 5 s")
    }

    /// Stops the server by PID: SIGTERM, then SIGKILL if it is still running after a second.
    ///
    /// Waits by polling with `Task.sleep`, never blocking a thread of the test's executor.
    func stop() async {
        guard let process = self.process else { return }
        self.process = nil
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        for _ in 0..<100 {
            guard process.isRunning else { return }
            try? await Task.sleep(for: .milliseconds(10))
        }
        kill(process.processIdentifier, SIGKILL)
        while process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
    }

    /// Stops the server and starts it again on the same port.
    func restart() async throws {
        await self.stop()
        var lastError: (any Error)?
        for _ in 0..<5 {
            do {
                try await self.launch()
                return
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        throw lastError!
    }

    deinit {
        // A test that did not stop its server: SIGTERM, a short grace, then SIGKILL.
        if let process = self.process, process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            for _ in 0..<50 where process.isRunning { usleep(2_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        try? FileManager.default.removeItem(at: self.directory)
    }

    /// A port that was free a moment ago: bound to port 0, read back, closed.
    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, streamSocket, 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
            }
        }
        guard bound else { throw Failure(description: "bind() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether the port accepts a connection and (without TLS) answers an inline PING.
    private static func isReady(port: Int, sendPing: Bool) -> Bool {
        let fd = socket(AF_INET, streamSocket, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else { return false }
        guard sendPing else { return true }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let ping = Array("PING\r\n".utf8)
        guard send(fd, ping, ping.count, 0) == ping.count else { return false }
        var reply = [UInt8](repeating: 0, count: 64)
        let count = recv(fd, &reply, reply.count, 0)
        // "+PONG", or "-NOAUTH" from a server with a password: either way it is serving.
        return count > 0 && (reply[0] == UInt8(ascii: "+") || reply[0] == UInt8(ascii: "-"))
    }
}

/// A logger that prints nothing, for tests.
let quietLogger = Logger(label: "resp-client-tests") { _ in SwiftLogNoOpLogHandler() }

/// Polls `condition` every 10 ms until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(20), _ condition: () -> Bool) async throws -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}
