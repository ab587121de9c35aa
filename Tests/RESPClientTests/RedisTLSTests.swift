import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import RESPClient
import Testing

@Suite("Redis over TLS")
struct RedisTLSTests {
    /// A self-signed certificate for localhost and 127.0.0.1, made with openssl.
    private static func makeCertificate(in directory: URL) throws -> RedisTestServer.TLSFiles {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificate = directory.appendingPathComponent("cert.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out",
            certificate,
        ]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        guard openssl.terminationStatus == 0 else {
            throw RedisTestServer.Failure(description: "openssl exited with \(openssl.terminationStatus)")
        }
        return RedisTestServer.TLSFiles(certificate: certificate, key: key)
    }

    @Test("connects with rediss:// and verifies the certificate", arguments: ["localhost", "127.0.0.1"])
    func tls(host: String) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-tls-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = try Self.makeCertificate(in: directory)
        let server = try await RedisTestServer.start(tls: files)
        var configuration = RedisClientConfiguration(
            endpoint: try RedisEndpoint(url: "rediss://\(host):\(server.port)")
        )
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(files.certificate))
        configuration.tls = tls
        let connection = try await RedisConnection.connect(
            configuration,
            on: MultiThreadedEventLoopGroup.singleton.any(),
            logger: quietLogger
        ).get()
        #expect(try await connection.send("PING", []).get().string == "PONG")
        _ = try await connection.close().get()

        var untrusted = configuration
        untrusted.tls = .makeClientConfiguration()
        await #expect(throws: (any Error).self) {
            _ = try await RedisConnection.connect(
                untrusted,
                on: MultiThreadedEventLoopGroup.singleton.any(),
                logger: quietLogger
            ).get()
        }
    }
}
