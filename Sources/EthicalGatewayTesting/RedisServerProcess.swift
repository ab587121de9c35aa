public import Foundation

/// A real `redis-server` on a free loopback port for a test, without persistence; stopped by
/// its PID. ``restart()`` brings it back on the same port (empty, as after a crash of a Redis
/// without persistence), for tests of what happens while Redis is away.
public final class RedisServerProcess: @unchecked Sendable {
    public private(set) var port: Int
    private var process: Process?
    private let extraArguments: [String]
    private let scratch: TemporaryDirectory
    /// PEM files of a self-signed certificate for `redis.test` when the server speaks only TLS.
    public private(set) var tlsCertificate: URL?
    private var tlsKey: URL?

    /// `redis://127.0.0.1:<port>`.
    public var url: String { "redis://127.0.0.1:\(self.port)" }

    /// Starts a server with `arguments` added to its command line (`["--requirepass", "x"]`, say);
    /// with `tls`, it listens only for TLS, with a self-signed certificate for `redis.test`
    /// (``tlsCertificate``) made by openssl.
    public init(arguments: [String] = [], tls: Bool = false) async throws {
        self.extraArguments = arguments
        self.scratch = try TemporaryDirectory(prefix: "redis")
        self.port = 0
        if tls {
            let certificate = self.scratch.url.appendingPathComponent("redis.pem")
            let key = self.scratch.url.appendingPathComponent("redis.key")
            let made = try await ProcessRunner.run(
                "openssl",
                [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=redis.test", "-addext", "subjectAltName=DNS:redis.test", "-keyout", key.path,
                    "-out", certificate.path,
                ],
                timeout: 30
            )
            guard made.exitCode == 0 else {
                throw ProcessRunnerError(message: "openssl could not make a certificate: \(made.standardError)")
            }
            self.tlsCertificate = certificate
            self.tlsKey = key
        }
        var lastError: (any Error)?
        // A port found free can be taken before redis-server binds it: try a few.
        for _ in 0..<5 {
            do {
                let reserved = try ClosedPort()
                let port = reserved.port
                reserved.release()
                self.port = port
                try await self.launch()
                return
            } catch {
                lastError = error
                self.stopProcess(signal: SIGKILL)
            }
        }
        throw lastError ?? ProcessRunnerError(message: "redis-server did not start")
    }

    /// A server started outside the test (by `.ci/run`), at `ETHICAL_GATEWAY_TEST_REDIS_PORT`,
    /// else a new one. Tests that share it use key prefixes of their own, and never stop it.
    public static func shared() async throws -> RedisServerProcess {
        if let text = ProcessInfo.processInfo.environment["ETHICAL_GATEWAY_TEST_REDIS_PORT"], let port = Int(text) {
            return try RedisServerProcess(attachedTo: port)
        }
        return try await RedisServerProcess()
    }

    /// Uses a server this object did not start: ``stop()`` and ``kill()`` leave it running.
    private init(attachedTo port: Int) throws {
        self.extraArguments = []
        self.scratch = try TemporaryDirectory(prefix: "redis")
        self.port = port
    }

    deinit {
        self.stopProcess(signal: SIGKILL)
        self.scratch.remove()
    }

    private func launch() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try ProcessRunner.locate("redis-server"))
        var ports = ["--port", String(self.port)]
        if let certificate = self.tlsCertificate, let key = self.tlsKey {
            ports = [
                "--port", "0", "--tls-port", String(self.port), "--tls-cert-file", certificate.path, "--tls-key-file",
                key.path, "--tls-ca-cert-file", certificate.path, "--tls-auth-clients", "no",
            ]
        }
        process.arguments =
            ports + [
                "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", self.scratch.url.path, "--logfile", self.scratch.url.appendingPathComponent("log").path,
            ] + self.extraArguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
        try await self.waitUntilReady(process)
    }

    /// Polls with `PING` until the server answers; fails if it exits or takes over 10 s.
    private func waitUntilReady(_ process: Process) async throws {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            guard process.isRunning else {
                throw ProcessRunnerError(message: "redis-server exited on port \(self.port): \(self.log.suffix(500))")
            }
            if let reply = try? await self.command(["PING"]), reply.hasPrefix("PONG") || reply.contains("NOAUTH") {
                return
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw ProcessRunnerError(message: "redis-server did not answer PING on port \(self.port) within 10 s")
    }

    /// Runs one command with `redis-cli` and returns its output (trimmed).
    public func command(_ arguments: [String], password: String? = nil) async throws -> String {
        var cli = ["-h", "127.0.0.1", "-p", String(self.port)]
        if let certificate = self.tlsCertificate {
            cli += ["--tls", "--cacert", certificate.path, "--sni", "redis.test"]
        }
        if let password { cli += ["--no-auth-warning", "-a", password] }
        let output = try await ProcessRunner.run("redis-cli", cli + arguments, timeout: 10)
        return output.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// What the server logged.
    public var log: String {
        (try? String(contentsOf: self.scratch.url.appendingPathComponent("log"), encoding: .utf8)) ?? ""
    }

    /// Kills the server (SIGKILL: no goodbye to its clients, like a crash).
    public func kill() {
        self.stopProcess(signal: SIGKILL)
    }

    /// Starts the server again on the same port, empty.
    public func start() async throws {
        try await self.launch()
    }

    /// Stops the server by its PID.
    public func stop() {
        self.stopProcess(signal: SIGTERM)
    }

    private func stopProcess(signal: Int32) {
        guard let process = self.process else { return }
        if process.isRunning {
            Foundation.kill(process.processIdentifier, signal)
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        self.process = nil
    }
}
