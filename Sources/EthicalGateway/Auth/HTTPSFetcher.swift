import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A small HTTPS client for key sets, discovery documents and token introspection: one request
/// per connection, certificate verification always on, a whole-exchange deadline and a size cap.
///
/// Fetches run on an event loop thread of their own, so their TLS handshakes and parsing never
/// take time from the loops that serve requests.
struct HTTPSFetcher: Sendable {
    struct Response: Sendable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    /// One thread for every issuer's fetches; they are rare and small.
    private static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    let tlsContext: NIOSSLContext
    let timeout: TimeAmount
    let maxBodyBytes: Int

    init(caFile: URL?, timeoutSeconds: Double, maxBodyBytes: Int = 1 << 20) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        if let caFile {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile.path))
        }
        self.tlsContext = try NIOSSLContext(configuration: configuration)
        self.timeout = .milliseconds(Int64(timeoutSeconds * 1000))
        self.maxBodyBytes = maxBodyBytes
    }

    func get(_ url: HTTPSURL) async throws -> Response {
        try await self.send(.GET, url, headers: [:], body: nil)
    }

    /// POSTs an `application/x-www-form-urlencoded` body.
    func postForm(_ url: HTTPSURL, form: String, headers: HTTPHeaders) async throws -> Response {
        var headers = headers
        headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        return try await self.send(.POST, url, headers: headers, body: form)
    }

    private func send(
        _ method: HTTPMethod,
        _ url: HTTPSURL,
        headers: HTTPHeaders,
        body: String?
    ) async throws
        -> Response
    {
        let eventLoop = Self.group.next()
        let promise = eventLoop.makePromise(of: Response.self)
        let isAddress = (try? SocketAddress(ipAddress: url.host, port: 0)) != nil
        let tlsContext = self.tlsContext
        let maxBodyBytes = self.maxBodyBytes
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(self.timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let tls = try NIOSSLClientHandler(context: tlsContext, serverHostname: isAddress ? nil : url.host)
                    let operations = channel.pipeline.syncOperations
                    try operations.addHandler(tls)
                    try operations.addHTTPClientHandlers()
                    try operations.addHandler(NIOHTTPClientResponseAggregator(maxContentLength: maxBodyBytes))
                    try operations.addHandler(
                        FetchHandler(method: method, url: url, headers: headers, body: body, promise: promise)
                    )
                }
            }
        let deadline = eventLoop.scheduleTask(in: self.timeout) {
            promise.fail(HTTPSFetchError("no complete answer within \(self.timeout.nanoseconds / 1_000_000) ms"))
        }
        let connecting = bootstrap.connect(host: url.host, port: url.port)
        connecting.whenFailure { promise.fail($0) }
        promise.futureResult.whenComplete { _ in
            deadline.cancel()
            connecting.whenSuccess { $0.close(promise: nil) }
        }
        return try await promise.futureResult.get()
    }
}

/// Sends the request once the connection is up and completes the promise with the whole answer.
private final class FetchHandler: ChannelInboundHandler {
    typealias InboundIn = NIOHTTPClientResponseFull
    typealias OutboundOut = HTTPClientRequestPart

    private let method: HTTPMethod
    private let url: HTTPSURL
    private let headers: HTTPHeaders
    private let body: String?
    private let promise: EventLoopPromise<HTTPSFetcher.Response>

    init(
        method: HTTPMethod,
        url: HTTPSURL,
        headers: HTTPHeaders,
        body: String?,
        promise: EventLoopPromise<HTTPSFetcher.Response>
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        let host = self.url.host.contains(":") ? "[\(self.url.host)]" : self.url.host
        var head = HTTPRequestHead(version: .http1_1, method: self.method, uri: self.url.target, headers: self.headers)
        head.headers.add(name: "Host", value: self.url.port == 443 ? host : "\(host):\(self.url.port)")
        head.headers.add(name: "Accept", value: "application/json")
        head.headers.add(name: "User-Agent", value: "ethical-gateway")
        head.headers.add(name: "Connection", value: "close")
        if let body = self.body {
            head.headers.add(name: "Content-Length", value: "\(body.utf8.count)")
        }
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        if let body = self.body {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        }
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let response = self.unwrapInboundIn(data)
        self.promise.succeed(
            HTTPSFetcher.Response(
                status: response.head.status,
                headers: response.head.headers,
                body: response.body ?? ByteBuffer()
            )
        )
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.promise.fail(HTTPSFetchError("the connection closed before a complete answer"))
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension FetchHandler: Sendable {}

/// A fetch that did not produce an answer.
struct HTTPSFetchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
