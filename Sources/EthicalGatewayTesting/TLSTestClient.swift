import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An HTTP/1.1 response read by ``TLSTestClient``.
public struct TestResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: String

    public func header(_ name: String) -> String? {
        self.headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// A keep-alive HTTPS client on SwiftNIO for tests that need what curl cannot show: one
/// connection used across a certificate reload, the certificate the server chose for an SNI name.
public final class TLSTestClient {
    private var iterator: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    /// SHA-256 fingerprint of the certificate the server presented.
    public private(set) var peerFingerprint = ""

    private init(
        iterator: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    ) {
        self.iterator = iterator
        self.outbound = outbound
    }

    /// Connects to `127.0.0.1:port`, sending `serverName` as SNI, completes the handshake with
    /// a first `GET /`, runs `body` with the client and closes the connection afterwards.
    public static func withConnection<Result>(
        port: Int,
        serverName: String?,
        _ body: (TLSTestClient) async throws -> Result
    ) async throws -> Result {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        tls.applicationProtocols = ["http/1.1"]
        let context = try NIOSSLContext(configuration: tls)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try NIOSSLClientHandler(context: context, serverHostname: serverName)
                    try channel.pipeline.syncOperations.addHandler(handler)
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel
                    )
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            let client = TLSTestClient(iterator: inbound.makeAsyncIterator(), outbound: outbound)
            _ = try await client.get("/")
            let certificate = try await channel.channel.nioSSL_peerCertificate().get()
            let der = try certificate?.toDERBytes() ?? []
            client.peerFingerprint = SHA256.hash(data: der).map { String(format: "%02X", $0) }.joined(separator: ":")
            return try await body(client)
        }
    }

    /// Sends a GET on this connection and reads the whole response.
    public func get(_ path: String, host: String = "localhost") async throws -> TestResponse {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: ["host": host])
        try await self.outbound.write(.head(head))
        try await self.outbound.write(.end(nil))
        var status = 0
        var headers: [(name: String, value: String)] = []
        var body = ByteBuffer()
        while let part = try await self.iterator.next() {
            switch part {
            case .head(let responseHead):
                status = Int(responseHead.status.code)
                headers = responseHead.headers.map { ($0.name, $0.value) }
            case .body(var buffer):
                body.writeBuffer(&buffer)
            case .end:
                return TestResponse(status: status, headers: headers, body: String(buffer: body))
            }
        }
        throw ProcessRunnerError(message: "the connection closed before the response ended")
    }
}
