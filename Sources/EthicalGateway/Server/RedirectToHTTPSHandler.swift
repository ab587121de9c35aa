import NIOCore
import NIOHTTP1

/// The handler of a redirect listener: every request gets a 308 to the same host and target
/// over HTTPS (308 keeps the method and body, unlike 301).
final class RedirectToHTTPSHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let httpsPort: Int
    private let headGuard: RequestHeadGuard

    init(httpsPort: Int, headGuard: RequestHeadGuard) {
        self.httpsPort = httpsPort
        self.headGuard = headGuard
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.headGuard.headReceived()
            var headers: HTTPHeaders = ["content-length": "0"]
            let status: HTTPResponseStatus
            // The same checks as every other listener: one Host, a canonical path.
            if case .success(let request) = CanonicalRequest.make(head, isHTTP2: false), let host = request.host,
                isHostName(host)
            {
                let port = self.httpsPort == 443 ? "" : ":\(self.httpsPort)"
                let target = request.query.map { request.path.path + "?" + $0 } ?? request.path.path
                headers.add(name: "location", value: "https://\(host)\(port)\(target)")
                status = .permanentRedirect
            } else {
                status = .badRequest
            }
            if !head.isKeepAlive { headers.add(name: "connection", value: "close") }
            context.write(
                self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
                promise: nil
            )
            let keepAlive = head.isKeepAlive && status == .permanentRedirect
            let written = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
            if !keepAlive {
                written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            }
        case .body:
            break
        case .end:
            self.headGuard.awaitNextHead()
        }
    }
}

@available(*, unavailable)
extension RedirectToHTTPSHandler: Sendable {}
