import Foundation
import NIOCore
import NIOHTTP1

/// Reads one admin request at a time (NIO's pipelining handler holds the next), answers it
/// through ``AdminAPI`` and keeps the connection for the next unless the client or an error
/// ends it. A request carrying the admin token may send up to ``maxBodyBytes``; any other (a
/// JWT, or nothing) up to ``unauthenticatedBodyBytes`` before the API has checked it, so
/// anonymous clients cannot make the gateway buffer much. Larger bodies are refused (413) and
/// the connection closes; so does a connection idle for ``idleTimeout``.
final class AdminHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let maxBodyBytes = 8 * 1024 * 1024
    static let unauthenticatedBodyBytes = 1024 * 1024
    static let idleTimeout = TimeAmount.seconds(Int64(30))

    private let api: AdminAPI
    private var head: HTTPRequestHead?
    private var body = Data()
    private var bodyLimit = AdminHTTPHandler.unauthenticatedBodyBytes
    private var tooLarge = false
    private var idleTimer: Scheduled<Void>?

    func handlerAdded(context: ChannelHandlerContext) {
        self.armIdleTimer(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.idleTimer?.cancel()
    }

    /// Closes the connection unless a request arrives within ``idleTimeout``.
    private func armIdleTimer(context: ChannelHandlerContext) {
        self.idleTimer?.cancel()
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.idleTimer = context.eventLoop.scheduleTask(in: Self.idleTimeout) { loopBound.value.close(promise: nil) }
    }

    init(api: AdminAPI) {
        self.api = api
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.idleTimer?.cancel()
            self.idleTimer = nil
            self.head = head
            self.body = Data()
            self.tooLarge = false
            let carriesToken = self.api.server.runtime.adminAccess?.carriesToken(head.headers) ?? false
            self.bodyLimit = carriesToken ? Self.maxBodyBytes : Self.unauthenticatedBodyBytes
        case .body(var buffer):
            guard !self.tooLarge else { return }
            if self.body.count + buffer.readableBytes > self.bodyLimit {
                self.tooLarge = true
                self.body = Data()
                return
            }
            self.body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
        case .end:
            guard let head = self.head else { return }
            self.head = nil
            if self.tooLarge {
                let response = AdminResponse.problem(
                    .payloadTooLarge,
                    "admin request bodies are limited to \(self.bodyLimit) bytes"
                        + (self.bodyLimit < Self.maxBodyBytes ? " without the admin token" : ""),
                    requestID: RequestID.generate()
                )
                self.write(response, for: head, keepAlive: false, context: context)
                return
            }
            let path = String(head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
            let request = AdminRequest(method: head.method, path: path, headers: head.headers, body: self.body)
            self.body = Data()
            let api = self.api
            let eventLoop = context.eventLoop
            let answered = eventLoop.makeFutureWithTask { await api.handle(request, on: eventLoop) }
            answered.assumeIsolated().whenSuccess { response in
                self.write(response, for: head, keepAlive: head.isKeepAlive, context: context)
            }
        }
    }

    private func write(
        _ response: AdminResponse,
        for request: HTTPRequestHead,
        keepAlive: Bool,
        context: ChannelHandlerContext
    ) {
        guard context.channel.isActive else { return }
        var headers = response.headers
        let bodyless = request.method == .HEAD
        headers.replaceOrAdd(name: "content-length", value: String(response.body.count))
        if !keepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
        let responseHead = HTTPResponseHead(version: request.version, status: response.status, headers: headers)
        context.write(self.wrapOutboundOut(.head(responseHead)), promise: nil)
        if !bodyless && !response.body.isEmpty {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        }
        let written = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        if !keepAlive {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            self.armIdleTimer(context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension AdminHTTPHandler: Sendable {}
