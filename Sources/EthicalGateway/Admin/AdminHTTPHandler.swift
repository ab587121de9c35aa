import Foundation
import NIOCore
import NIOHTTP1

/// Reads one admin request at a time (NIO's pipelining handler holds the next), answers it
/// through ``AdminAPI`` and keeps the connection for the next unless the client or an error
/// ends it. Bodies over ``maxBodyBytes`` are refused with 413 and the connection closes.
final class AdminHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let maxBodyBytes = 8 * 1024 * 1024

    private let api: AdminAPI
    private var head: HTTPRequestHead?
    private var body = Data()
    private var tooLarge = false

    init(api: AdminAPI) {
        self.api = api
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body = Data()
            self.tooLarge = false
        case .body(var buffer):
            guard !self.tooLarge else { return }
            if self.body.count + buffer.readableBytes > Self.maxBodyBytes {
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
                    "admin request bodies are limited to \(Self.maxBodyBytes) bytes",
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
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension AdminHTTPHandler: Sendable {}
