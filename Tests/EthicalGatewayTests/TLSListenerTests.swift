import EthicalGateway
import EthicalGatewayTesting
import Foundation
import Testing

@Suite("HTTPS listeners: SNI, ALPN, TLS versions, development and reloaded certificates")
struct TLSListenerTests {
    /// A gateway whose HTTPS listener has a default, an exact and a wildcard certificate.
    func withThreeCertificates(_ body: (LiveGateway, [String: TestCertificate]) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let certificates = [
            "default": try TestCertificate.make(
                commonName: "default.test",
                dnsNames: ["default.test"],
                in: directory.url
            ),
            "exact": try TestCertificate.make(commonName: "api.test", dnsNames: ["api.test"], in: directory.url),
            "wildcard": try TestCertificate.make(
                commonName: "*.apps.test",
                dnsNames: ["*.apps.test"],
                in: directory.url
            ),
        ]
        let entries = ["default", "exact", "wildcard"].map {
            #"{ "certificateFile": "\#(certificates[$0]!.certificateFile.path)", "keyFile": "\#(certificates[$0]!.keyFile.path)" }"#
        }
        let config = """
            { "listeners": [ { "name": "https", "address": "127.0.0.1", "port": 0,
                               "tls": { "certificates": [ \(entries.joined(separator: ", ")) ] } } ],
              "routes": [ { "backend": "ok" } ],
              "backends": { "ok": { "plugin": "respond", "config": { "body": "hello" } } } }
            """
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            try await body(gateway, certificates)
        }
    }

    @Test("SNI picks the exact certificate, then the wildcard, then the default")
    func sniSelection() async throws {
        try await self.withThreeCertificates { gateway, certificates in
            let port = gateway.port("https")
            let cases: [(String?, String)] = [
                ("api.test", "exact"), ("API.test", "exact"), ("x.apps.test", "wildcard"),
                ("a.b.apps.test", "default"), ("other.test", "default"), (nil, "default"),
            ]
            for (name, expected) in cases {
                let fingerprint = try await TLSTestClient.withConnection(port: port, serverName: name) {
                    $0.peerFingerprint
                }
                #expect(
                    fingerprint == certificates[expected]!.fingerprint,
                    "SNI \(name ?? "none") should get the \(expected) certificate"
                )
            }
            // An independent client agrees: openssl s_client shows the subject chosen by -servername.
            let output = try await ProcessRunner.run(
                "openssl",
                ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "x.apps.test"],
                standardInput: ""
            )
            #expect(
                output.standardOutput.contains("CN = *.apps.test") || output.standardOutput.contains("CN=*.apps.test")
            )
        }
    }

    @Test("a certificate file holding the chain (leaf, then intermediate) is served whole")
    func certificateChain() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // A root CA, an intermediate and a leaf for 127.0.0.1, made by openssl (not by us).
        let script = """
            set -e
            cd "$1"
            openssl ecparam -name prime256v1 -genkey -noout -out root.key
            openssl req -x509 -new -key root.key -subj /CN=Test-Root -days 2 -out root.pem \\
              -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
            openssl ecparam -name prime256v1 -genkey -noout -out int.key
            openssl req -new -key int.key -subj /CN=Test-Intermediate -out int.csr
            printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign\\n' > int.ext
            openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -days 2 -extfile int.ext -out int.pem
            openssl ecparam -name prime256v1 -genkey -noout -out leaf.key
            openssl req -new -key leaf.key -subj /CN=localhost -out leaf.csr
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > leaf.ext
            openssl x509 -req -in leaf.csr -CA int.pem -CAkey int.key -CAcreateserial -days 2 -extfile leaf.ext -out leaf.pem
            cat leaf.pem int.pem > chain.pem
            """
        let made = try await ProcessRunner.run("sh", ["-c", script, "sh", directory.url.path])
        try #require(made.exitCode == 0, "\(made.standardError)")
        let config = """
            { "listeners": [ { "name": "https", "address": "127.0.0.1", "port": 0,
                               "tls": { "certificates": [ { "certificateFile": "\(directory.url.path)/chain.pem",
                                                            "keyFile": "\(directory.url.path)/leaf.key" } ] } } ],
              "routes": [ { "backend": "ok" } ], "backends": { "ok": { "plugin": "respond", "config": { "body": "ok" } } } }
            """
        try await LiveGateway.with(config: config, registry: gatewayRegistry) { gateway in
            // curl trusts only the root: the handshake succeeds only if the intermediate is sent.
            for flag in ["--http1.1", "--http2"] {
                let response = try await Curl.request(
                    "https://127.0.0.1:\(gateway.port("https"))/",
                    [flag, "--cacert", "\(directory.url.path)/root.pem"]
                )
                #expect(response.bodyText == "ok", "\(flag)")
            }
        }
    }

    @Test("ALPN serves HTTP/2 and HTTP/1.1")
    func alpn() async throws {
        try await self.withThreeCertificates { gateway, _ in
            let url = "https://127.0.0.1:\(gateway.port("https"))/"
            let h2 = try await Curl.request(url, ["--http2"])
            #expect(h2.httpVersion == "2")
            #expect(h2.status == 200 && h2.bodyText == "hello")
            let h1 = try await Curl.request(url, ["--http1.1"])
            #expect(h1.httpVersion == "1.1")
            #expect(h1.bodyText == "hello")
        }
    }

    @Test("TLS 1.0 and 1.1 are refused, 1.2 and 1.3 accepted")
    func tlsVersions() async throws {
        try await self.withThreeCertificates { gateway, _ in
            let port = gateway.port("https")
            for (flag, accepted) in [("-tls1_1", false), ("-tls1", false), ("-tls1_2", true), ("-tls1_3", true)] {
                let output = try await ProcessRunner.run(
                    "openssl",
                    ["s_client", "-connect", "127.0.0.1:\(port)", flag, "-cipher", "DEFAULT@SECLEVEL=0"],
                    standardInput: ""
                )
                let negotiated =
                    output.standardOutput.contains("Cipher is ") && !output.standardOutput.contains("Cipher is (NONE)")
                #expect(
                    negotiated == accepted,
                    "\(flag): \(output.standardOutput.suffix(300)) \(output.standardError.suffix(300))"
                )
            }
        }
    }

    @Test("without certificates a development certificate is made once and kept across restarts")
    func developmentCertificate() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let configFile = try directory.write(
            """
            { "stateDirectory": "state",
              "listeners": [ { "name": "https", "address": "127.0.0.1", "port": 0, "tls": {} } ],
              "routes": [ { "backend": "ok" } ], "backends": { "ok": { "plugin": "respond" } } }
            """,
            to: "gateway.json"
        )
        var fingerprints: [String] = []
        for _ in 0..<2 {
            let gateway = try await LiveGateway.start(
                configFile: configFile,
                directory: directory,
                registry: gatewayRegistry
            )
            fingerprints.append(
                try await TLSTestClient.withConnection(port: gateway.port("https"), serverName: "localhost") {
                    $0.peerFingerprint
                }
            )
            try await gateway.shutdown()
        }
        #expect(fingerprints[0] == fingerprints[1])
        let keyFile = directory.url.appendingPathComponent("state/development-key.pem")
        let attributes = try FileManager.default.attributesOfItem(atPath: keyFile.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test("certificates reload without dropping open connections")
    func reload() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let old = try TestCertificate.make(
            commonName: "old.test",
            dnsNames: ["site.test"],
            in: directory.url,
            fileStem: "site"
        )
        let configFile = try directory.write(
            """
            { "listeners": [ { "name": "https", "address": "127.0.0.1", "port": 0,
                "tls": { "certificates": [ { "certificateFile": "site.pem", "keyFile": "site.key" } ] } } ],
              "routes": [ { "backend": "ok" } ], "backends": { "ok": { "plugin": "respond", "config": { "body": "up" } } } }
            """,
            to: "gateway.json"
        )
        let gateway = try await LiveGateway.start(
            configFile: configFile,
            directory: directory,
            registry: gatewayRegistry
        )
        let port = gateway.port("https")
        try await TLSTestClient.withConnection(port: port, serverName: "site.test") { connection in
            #expect(connection.peerFingerprint == old.fingerprint)
            // Replace the files and reload while this connection stays open.
            let new = try TestCertificate.make(
                commonName: "new.test",
                dnsNames: ["site.test"],
                in: directory.url,
                fileStem: "site"
            )
            // What SIGHUP does: the whole config is reloaded, its certificate files re-read.
            let reloaded = await gateway.controller.reloadFile(trigger: "test")
            #expect((try? reloaded.get()) != nil)
            let again = try await connection.get("/")
            #expect(again.status == 200 && again.body == "up")
            let fresh = try await TLSTestClient.withConnection(port: port, serverName: "site.test") {
                $0.peerFingerprint
            }
            #expect(fresh == new.fingerprint)

            // A broken file on reload keeps the new certificate in service and says why.
            try Data("not a certificate".utf8).write(to: new.certificateFile)
            let refused = await gateway.controller.reloadFile(trigger: "test")
            guard case .failure(.invalid(let error)) = refused else {
                Issue.record("a broken certificate file was accepted: \(refused)")
                return
            }
            #expect(error.issues.first?.path == "$.listeners[0].tls.certificates[0].certificateFile", "\(error)")
            let still = try await TLSTestClient.withConnection(port: port, serverName: "site.test") {
                $0.peerFingerprint
            }
            #expect(still == new.fingerprint)
        }
        try await gateway.shutdown()
    }
}
