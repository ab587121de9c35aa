import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

@Suite("The ethical-gateway binary")
struct CommandLineTests {
    @Test("version prints the version")
    func version() async throws {
        let output = try await GatewayProcess.run(["version"])
        #expect(output.exitCode == 0)
        #expect(output.standardOutput == "ethical-gateway \(GatewayVersion.current)\n")
    }

    @Test("validate prints every error with its JSON path and exits 1")
    func validateBroken() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.write(
            """
            { "listeners": [ { "port": 99999 }, { "port": 8080, "tls": { "certificates": [ { "certificateFile": "nope.pem", "keyFile": "nope.key" } ] } } ],
              "routes": [ { "backend": "ghost" } ],
              "backends": { "files": { "plugin": "static", "config": { "root": "missing", "colour": "red" } } } }
            """,
            to: "broken.json"
        )
        let output = try await GatewayProcess.run(["validate", file.path])
        #expect(output.exitCode == 1)
        for path in [
            "$.listeners[0].port", "$.listeners[1].tls.certificates[0].certificateFile",
            "$.listeners[1].tls.certificates[0].keyFile",
            "$.routes[0].backend", "$.backends.files.config.colour",
        ] {
            #expect(output.standardError.contains("\(path):"), "missing \(path) in:\n\(output.standardError)")
        }
        #expect(output.standardError.contains("errors:"))
    }

    @Test("validate accepts a good file and creates nothing")
    func validateGood() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.write(
            #"{ "listeners": [ { "port": 8443, "tls": {} } ], "routes": [ { "backend": "ok" } ], "backends": { "ok": { "plugin": "respond" } } }"#,
            to: "good.json"
        )
        let output = try await GatewayProcess.run(["validate", file.path])
        #expect(output.exitCode == 0)
        #expect(!FileManager.default.fileExists(atPath: directory.url.appendingPathComponent("state").path))
    }

    @Test("runs from any working folder: relative paths resolve against the config's folder; SIGTERM exits 0")
    func relativePathsAndSigterm() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let certificate = try TestCertificate.make(
            commonName: "rel.test",
            dnsNames: ["rel.test"],
            in: directory.url,
            fileStem: "certs-site"
        )
        try FileManager.default.createDirectory(
            at: directory.url.appendingPathComponent("certs"),
            withIntermediateDirectories: true
        )
        try FileManager.default.moveItem(
            at: certificate.certificateFile,
            to: directory.url.appendingPathComponent("certs/site.pem")
        )
        try FileManager.default.moveItem(
            at: certificate.keyFile,
            to: directory.url.appendingPathComponent("certs/site.key")
        )
        try directory.write("from the config folder", to: "www/index.html")
        let file = try directory.write(
            """
            { "stateDirectory": "var",
              "listeners": [ { "name": "https", "address": "127.0.0.1", "port": 0,
                               "tls": { "certificates": [ { "certificateFile": "certs/site.pem", "keyFile": "certs/site.key" } ] } } ],
              "routes": [ { "backend": "www" } ],
              "backends": { "www": { "plugin": "static", "config": { "root": "www" } } } }
            """,
            to: "conf/../gateway.json"
        )
        let gateway = try await GatewayProcess(
            arguments: ["run", "--config", file.path],
            currentDirectory: URL(fileURLWithPath: "/"),
            expectedListeners: 1
        )
        let port = try #require(gateway.listeningPorts["https"], "\(gateway.log)")
        let response = try await Curl.request("https://127.0.0.1:\(port)/")
        #expect(response.bodyText == "from the config folder")
        #expect(gateway.stop(signal: SIGTERM) == 0)
        #expect(gateway.log.contains("stopped"))
    }

    @Test("the config path and log level come from the environment")
    func environment() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.write(
            #"{ "listeners": [ { "name": "web", "address": "127.0.0.1", "port": 0 } ], "routes": [ { "backend": "ok" } ], "backends": { "ok": { "plugin": "respond", "config": { "body": "env" } } } }"#,
            to: "env.json"
        )
        let gateway = try await GatewayProcess(
            arguments: [],
            currentDirectory: URL(fileURLWithPath: "/"),
            environment: ["ETHICAL_GATEWAY_CONFIG": file.path, "ETHICAL_GATEWAY_LOG_LEVEL": "debug"],
            expectedListeners: 1
        )
        let port = try #require(gateway.listeningPorts["web"], "\(gateway.log)")
        #expect(try await Curl.request("http://127.0.0.1:\(port)/").bodyText == "env")
        #expect(gateway.log.contains(" debug "))
        #expect(gateway.stop() == 0)
    }

    @Test("start-up failures exit 1 with one line naming the listener and the cause")
    func startupFailures() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let blocker = try RawListener()
        let busy = try directory.write(
            """
            { "listeners": [ { "name": "public", "address": "127.0.0.1", "port": \(blocker.port) } ],
              "routes": [ { "backend": "ok" } ], "backends": { "ok": { "plugin": "respond" } } }
            """,
            to: "busy.json"
        )
        let output = try await GatewayProcess.run(["run", "--config", busy.path, "--log-level", "error"])
        #expect(output.exitCode == 1)
        let errorLines = output.standardError.split(separator: "\n").filter { $0.hasPrefix("error:") }
        #expect(
            errorLines == [
                "error: listener \"public\": cannot listen on 127.0.0.1:\(blocker.port): port \(blocker.port) is already in use"
            ]
        )

        let missingCertificate = try directory.write(
            """
            { "listeners": [ { "name": "secure", "address": "127.0.0.1", "port": 0,
                               "tls": { "certificates": [ { "certificateFile": "gone.pem", "keyFile": "gone.key" } ] } } ],
              "routes": [], "backends": {} }
            """,
            to: "missing.json"
        )
        let missing = try await GatewayProcess.run(["run", "--config", missingCertificate.path])
        #expect(missing.exitCode == 1)
        #expect(
            missing.standardError.contains(
                "$.listeners[0].tls.certificates[0].certificateFile: certificate file \(directory.url.path)/gone.pem does not exist"
            )
        )
    }

    @Test("a config file replaced with garbage changes nothing in the running binary; validate names the error")
    func garbageConfig() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.write(
            """
            { "listeners": [ { "name": "http", "address": "127.0.0.1", "port": 0 } ],
              "routes": [ { "backend": "ok" } ], "backends": { "ok": { "plugin": "respond", "config": { "body": "ok" } } } }
            """,
            to: "gateway.json"
        )
        let gateway = try await GatewayProcess(arguments: ["--config", file.path], expectedListeners: 1)
        let port = try #require(gateway.listeningPorts["http"])
        try directory.write("{ \"listeners\": [ { \"port\": 80, \"port\": \u{0}garbage", to: "gateway.json")
        gateway.signal(SIGHUP)
        for _ in 0..<3 {
            let response = try await Curl.request("http://127.0.0.1:\(port)/")
            #expect(response.bodyText == "ok")
        }
        let validate = try await GatewayProcess.run(["validate", file.path])
        #expect(validate.exitCode == 1)
        #expect(validate.standardOutput.contains("not valid JSON") || validate.standardError.contains("not valid JSON"))
        let restart = try await GatewayProcess.run(["--config", file.path], timeout: 30)
        #expect(restart.exitCode != 0)
        #expect(gateway.stop() == 0)
    }

    @Test("SIGHUP reloads certificates in the running binary")
    func sighup() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let first = try TestCertificate.make(
            commonName: "one.test",
            dnsNames: ["one.test"],
            in: directory.url,
            fileStem: "tls"
        )
        let file = try directory.write(
            """
            { "listeners": [ { "name": "https", "address": "127.0.0.1", "port": 0,
                               "tls": { "certificates": [ { "certificateFile": "tls.pem", "keyFile": "tls.key" } ] } } ],
              "routes": [ { "backend": "ok" } ], "backends": { "ok": { "plugin": "respond" } } }
            """,
            to: "gateway.json"
        )
        let gateway = try await GatewayProcess(arguments: ["--config", file.path], expectedListeners: 1)
        let port = try #require(gateway.listeningPorts["https"])
        #expect(
            try await TLSTestClient.withConnection(port: port, serverName: "one.test") { $0.peerFingerprint }
                == first.fingerprint
        )
        let second = try TestCertificate.make(
            commonName: "two.test",
            dnsNames: ["one.test"],
            in: directory.url,
            fileStem: "tls"
        )
        gateway.signal(SIGHUP)
        var seen = ""
        for _ in 0..<100 where seen != second.fingerprint {
            try await Task.sleep(for: .milliseconds(50))
            seen = try await TLSTestClient.withConnection(port: port, serverName: "one.test") { $0.peerFingerprint }
        }
        #expect(seen == second.fingerprint)
        #expect(gateway.stop() == 0)
    }
}

/// A socket bound to a free loopback port, to make that port busy.
final class RawListener {
    let descriptor: Int32
    let port: Int

    init(backlog: Int32 = 1) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw -> Int32 in
                guard bind(descriptor, raw, length) == 0, listen(descriptor, backlog) == 0 else { return -1 }
                return getsockname(descriptor, raw, &length)
            }
        }
        guard bound == 0 else { throw ProcessRunnerError(message: "could not bind a blocker socket") }
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(self.descriptor) }
}
