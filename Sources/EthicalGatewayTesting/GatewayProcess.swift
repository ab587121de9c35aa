public import Foundation

/// The real `ethical-gateway` binary started as a child process, for tests of the command
/// line, signals and exit codes. Always stopped by its PID.
public final class GatewayProcess: @unchecked Sendable {
    public let process: Process
    private let logFile: URL
    private let scratch: TemporaryDirectory

    /// The built binary: next to the test bundle in the build folder.
    public static var binaryPath: String {
        let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var folder = testBinary.deletingLastPathComponent()
        // The test binary lives inside `<name>.xctest` on some platforms; step out of it.
        while folder.pathExtension == "xctest" || folder.lastPathComponent == "MacOS"
            || folder.lastPathComponent == "Contents"
        {
            folder.deleteLastPathComponent()
        }
        return folder.appendingPathComponent("ethical-gateway").path
    }

    /// Runs the binary to completion (for `validate`, `version`, start-up failures).
    public static func run(
        _ arguments: [String],
        currentDirectory: URL? = nil,
        environment: [String: String]? = nil,
        timeout: TimeInterval = 30
    ) async throws -> ProcessOutput {
        try await ProcessRunner.run(
            Self.binaryPath,
            arguments,
            currentDirectory: currentDirectory,
            environment: environment,
            timeout: timeout
        )
    }

    /// Starts the binary and waits until it logged `expectedListeners` "listening" lines (or exited).
    public init(
        arguments: [String],
        currentDirectory: URL? = nil,
        environment: [String: String] = [:],
        expectedListeners: Int,
        timeout: TimeInterval = 30
    ) async throws {
        self.scratch = try TemporaryDirectory(prefix: "gateway-process")
        self.logFile = self.scratch.url.appendingPathComponent("log")
        _ = FileManager.default.createFile(atPath: self.logFile.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binaryPath)
        process.arguments = arguments
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let handle = try FileHandle(forWritingTo: self.logFile)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !process.isRunning { return }
            if self.listeningPorts.count >= expectedListeners { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        self.stop(signal: SIGKILL)
        throw ProcessRunnerError(message: "the gateway did not start within \(timeout)s; log:\n\(self.log)")
    }

    deinit {
        if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
        self.scratch.remove()
    }

    /// Everything the process wrote so far.
    public var log: String {
        (try? String(contentsOf: self.logFile, encoding: .utf8)) ?? ""
    }

    /// Ports from the "listening" log lines, by listener name.
    public var listeningPorts: [String: Int] {
        var ports: [String: Int] = [:]
        for line in self.log.split(separator: "\n") where line.hasSuffix("listening") {
            guard let listener = Self.field("listener", in: line), let address = Self.field("address", in: line),
                let port = address.split(separator: ":").last.flatMap({ Int($0) })
            else { continue }
            ports[listener] = port
        }
        return ports
    }

    /// The admin API's port, from its "admin API listening" log line.
    public var adminPort: Int? {
        for line in self.log.split(separator: "\n") where line.hasSuffix("admin API listening") {
            if let address = Self.field("address", in: line), let port = address.split(separator: ":").last {
                return Int(port)
            }
        }
        return nil
    }

    private static func field(_ name: String, in line: Substring) -> String? {
        guard let range = line.range(of: " \(name)=") else { return nil }
        let rest = line[range.upperBound...]
        return String(rest.prefix { $0 != " " })
    }

    /// Sends `signal` to the process by PID.
    public func signal(_ signal: Int32) {
        kill(self.process.processIdentifier, signal)
    }

    /// Waits for the process to exit, killing it after `timeout`; returns the exit code.
    @discardableResult
    public func waitForExit(timeout: TimeInterval = 20) async -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while self.process.isRunning && Date() < deadline {
            try? await Task.sleep(for: .milliseconds(25))
        }
        if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
        self.process.waitUntilExit()
        return self.process.terminationStatus
    }

    /// SIGTERM, then wait; SIGKILL if it does not exit in time.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM, timeout: TimeInterval = 20) -> Int32 {
        guard self.process.isRunning else { return self.process.terminationStatus }
        kill(self.process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(timeout)
        while self.process.isRunning && Date() < deadline { usleep(20_000) }
        if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
        self.process.waitUntilExit()
        return self.process.terminationStatus
    }
}
