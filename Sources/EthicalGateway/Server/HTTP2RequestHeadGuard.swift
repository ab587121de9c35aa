import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// Checks an HTTP/2 request's header block before it is turned into an HTTP/1-style head, so
/// the one host every later step sees is the one RFC 9113 8.3.1 says it is:
///
/// - `:authority` wins: a `host` field equal to it (case-insensitively) is dropped, a differing
///   one makes the request malformed (swift-nio-http2's conversion would otherwise silently
///   prefer `host`, so routing and the upstream would see another host than the client named);
/// - a request with `host` and no `:authority` is accepted, as the RFC allows, with `host` moved
///   into `:authority`;
/// - a request with neither is malformed;
/// - field values with leading or trailing whitespace are malformed (RFC 9113 8.2.1);
/// - `cookie` crumbs are joined into one field (RFC 9113 8.2.3);
/// - a `GET`, `HEAD`, `DELETE` or `TRACE` that may carry a body gets framing (see
///   ``framingPossibleBody(_:)``);
/// - a `CONNECT` is served only as an extended CONNECT for a WebSocket (RFC 8441), which goes on
///   in the form an HTTP/1.1 WebSocket opening has (``HTTP2ExtendedConnect``); any other
///   `CONNECT` is answered `501` with a problem document.
///
/// A malformed request is refused with `RST_STREAM(PROTOCOL_ERROR)` and never forwarded.
final class HTTP2RequestHeadGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private var sawHeaders = false
    private var refused = false
    /// The stream's request is an extended CONNECT for a WebSocket (read by ``GatewayHTTPHandler``
    /// when the request head arrives: the stream may become a WebSocket).
    private(set) var isWebSocketRequest = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.refused else { return }
        guard !self.sawHeaders, case .headers(var headers) = self.unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        self.sawHeaders = true
        guard let normalized = Self.normalized(headers.headers) else {
            self.refuse(context: context)
            return
        }
        let fields = Self.joiningCookieCrumbs(normalized)
        switch HTTP2ExtendedConnect.classify(fields) {
        case .ordinary:
            headers.headers = headers.endStream ? fields : Self.framingPossibleBody(fields)
        case .webSocket(let opening):
            self.isWebSocketRequest = true
            headers.headers = opening
        case .refused(let status, let detail):
            self.answer(status, detail: detail, context: context)
            return
        }
        context.fireChannelRead(self.wrapInboundOut(.headers(headers)))
    }

    /// The header block with one authority and no `host`, or `nil` when it is malformed.
    static func normalized(_ fields: HPACKHeaders) -> HPACKHeaders? {
        let authorities = fields[":authority"]
        let hosts = fields["host"]
        for (name, value, _) in fields where !name.hasPrefix(":") {
            if let first = value.utf8.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { return nil }
            if let last = value.utf8.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { return nil }
        }
        // Neither: nothing names the host (RFC 9113 8.3.1 requires one of them).
        if hosts.isEmpty { return authorities.isEmpty ? nil : fields }
        let authority: String
        if let given = authorities.first {
            guard authorities.count == 1,
                hosts.allSatisfy({ $0.lowercased() == given.lowercased() })
            else { return nil }
            authority = given
        } else {
            guard hosts.count == 1 else { return nil }
            authority = hosts[0]
        }
        var result = HPACKHeaders()
        result.reserveCapacity(fields.count)
        for (name, value, indexing) in fields {
            switch name {
            case "host":
                continue
            case ":authority":
                result.add(name: name, value: authority, indexing: indexing)
            default:
                result.add(name: name, value: value, indexing: indexing)
            }
        }
        if authorities.isEmpty {
            // Pseudo-header fields come first (RFC 9113 8.3).
            var withAuthority = HPACKHeaders()
            withAuthority.reserveCapacity(result.count + 1)
            var inserted = false
            for (name, value, indexing) in result {
                if !inserted && !name.hasPrefix(":") {
                    withAuthority.add(name: ":authority", value: authority)
                    inserted = true
                }
                withAuthority.add(name: name, value: value, indexing: indexing)
            }
            if !inserted { withAuthority.add(name: ":authority", value: authority) }
            return withAuthority
        }
        return result
    }

    /// The block with its `cookie` fields joined into one, where the first was, by `"; "`:
    /// HTTP/2 clients may split cookies into crumbs (RFC 9113 8.2.3), which must be joined
    /// before the request goes on as HTTP/1.1. Unjoined, they reached upstreams as several
    /// `Cookie` lines and counted as many fields against `limits.maxHeaderCount` (a browser with
    /// many cookies got 431 over HTTP/2 and 200 over HTTP/1.1).
    static func joiningCookieCrumbs(_ fields: HPACKHeaders) -> HPACKHeaders {
        var crumbs = 0
        for (name, _, _) in fields where name == "cookie" { crumbs += 1 }
        guard crumbs > 1 else { return fields }
        let joined = fields["cookie"].joined(separator: "; ")
        var result = HPACKHeaders()
        result.reserveCapacity(fields.count - crumbs + 1)
        var placed = false
        for (name, value, indexing) in fields {
            guard name == "cookie" else {
                result.add(name: name, value: value, indexing: indexing)
                continue
            }
            if !placed {
                result.add(name: name, value: joined, indexing: .neverIndexed)
                placed = true
            }
        }
        return result
    }

    /// The block of a request whose HEADERS frame did not end the stream, so DATA may follow:
    /// a `GET`, `HEAD`, `DELETE` or `TRACE` without `content-length` is marked
    /// `transfer-encoding: chunked`, as swift-nio-http2's conversion marks every other method.
    /// Unmarked, its head said "no body" while a body came: the proxy sent the upstream the head
    /// alone and the body was lost (an HTTP/1.1 client's chunked `GET` is framed the same way).
    static func framingPossibleBody(_ fields: HPACKHeaders) -> HPACKHeaders {
        guard let method = fields.first(name: ":method"),
            method == "GET" || method == "HEAD" || method == "DELETE" || method == "TRACE",
            !fields.contains(name: "content-length")
        else { return fields }
        var result = fields
        result.add(name: "transfer-encoding", value: "chunked")
        return result
    }

    /// Answers a request no route may see with a problem document, then ends the stream
    /// (`RST_STREAM(NO_ERROR)`: the client need not send the rest, RFC 9113 8.1).
    private func answer(_ status: HTTPResponseStatus, detail: String, context: ChannelHandlerContext) {
        self.refused = true
        let problem = ProblemDetails(status: status, detail: detail, instance: nil, requestID: RequestID.generate())
        let body = problem.jsonBody(allocator: context.channel.allocator)
        let head = problem.responseHead(version: .http2, bodyLength: body.readableBytes)
        var fields = HPACKHeaders([(":status", String(status.code))])
        for (name, value) in head.headers { fields.add(name: name.lowercased(), value: value) }
        fields.add(name: "x-request-id", value: problem.requestID)
        context.eventLoop.assumeIsolated().execute {
            context.write(self.wrapOutboundOut(.headers(.init(headers: fields))), promise: nil)
            let end = HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(body), endStream: true))
            // Reset only once the answer is out: a reset would overtake DATA waiting for flow control.
            context.writeAndFlush(self.wrapOutboundOut(end)).assumeIsolated().whenComplete { _ in
                guard context.channel.isActive else { return }
                context.writeAndFlush(self.wrapOutboundOut(.rstStream(.noError)), promise: nil)
                context.close(promise: nil)
            }
        }
    }

    private func refuse(context: ChannelHandlerContext) {
        self.refused = true
        // Reset on the next tick: a stream closed inside its first read is closed before the
        // connection's stream bookkeeping has seen it open.
        context.eventLoop.assumeIsolated().execute {
            context.writeAndFlush(self.wrapOutboundOut(.rstStream(.protocolError)), promise: nil)
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension HTTP2RequestHeadGuard: Sendable {}
