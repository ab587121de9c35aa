import NIOCore
import NIOHPACK
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
/// - field values with leading or trailing whitespace are malformed (RFC 9113 8.2.1).
///
/// A malformed request is refused with `RST_STREAM(PROTOCOL_ERROR)` and never forwarded.
final class HTTP2RequestHeadGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private var sawHeaders = false
    private var refused = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.refused else { return }
        guard !self.sawHeaders, case .headers(var headers) = self.unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        self.sawHeaders = true
        guard let fields = Self.normalized(headers.headers) else {
            self.refuse(context: context)
            return
        }
        headers.headers = fields
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
