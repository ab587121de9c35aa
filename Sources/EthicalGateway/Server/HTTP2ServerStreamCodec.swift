import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// NIO's `HTTP2FramePayloadToHTTP1ServerCodec` (an HTTP/2 stream's frames as HTTP/1-style
/// request and response parts), in a handler the gateway can take out of the stream's
/// pipeline: NIO's own is not removable, and a stream that becomes a WebSocket (RFC 8441)
/// stops speaking HTTP after its `200` (``HTTP2StreamTunnelHandler`` takes over). Response
/// heads get the gateway's own header block (``HTTP2ResponseHeaders``).
///
/// A response head whose block cannot go out in one HEADERS frame (NIO's encoder writes no
/// CONTINUATION frames) is answered `502` with a problem document instead, and the response's
/// body is dropped, as nginx and HAProxy answer a head too large to relay. Before, the HEADERS
/// write failed and the body went out alone, which clients take as a protocol error.
final class HTTP2ServerStreamCodec: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTP2Frame.FramePayload

    /// The most a header block may take in one frame: the initial `SETTINGS_MAX_FRAME_SIZE`,
    /// which clients rarely raise.
    static let maxHeaderBlockBytes = 1 << 14
    /// Raw field bytes below which a block cannot reach ``maxHeaderBlockBytes`` (Huffman codes
    /// of printable ASCII are at most 1.9 times as long, plus a few bytes per field), so only
    /// larger heads are encoded once more to be measured.
    static let certainlyFitsBytes = 6 * 1024

    private let codec = HTTP2FramePayloadToHTTP1ServerCodec()
    /// Set when the response's head was replaced by a 502: its body parts are dropped.
    private var droppingResponse = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.codec.channelRead(context: context, data: data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // NIO's codec turns response parts into frames without state, so the head can take
        // the gateway's own header block (see ``HTTP2ResponseHeaders``).
        switch self.unwrapOutboundIn(data) {
        case .head(let head):
            let block = HTTP2ResponseHeaders.make(head)
            if let encoded = Self.oversizedBlockBytes(block, allocator: context.channel.allocator) {
                self.droppingResponse = true
                self.answerBadGateway(context: context, head: head, encodedBytes: encoded, promise: promise)
                return
            }
            context.write(self.wrapOutboundOut(.headers(.init(headers: block))), promise: promise)
        case .body where self.droppingResponse:
            promise?.succeed(())
        case .end where self.droppingResponse:
            self.droppingResponse = false
            let end = HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))
            context.write(self.wrapOutboundOut(end), promise: promise)
        case .body, .end:
            self.codec.write(context: context, data: data, promise: promise)
        }
    }

    /// The block's encoded size when it is over ``maxHeaderBlockBytes``, else `nil`. Measured
    /// with a fresh encoder (no dynamic table entries to refer to), which never writes less
    /// than the connection's.
    static func oversizedBlockBytes(_ block: HPACKHeaders, allocator: ByteBufferAllocator) -> Int? {
        var raw = 0
        for (name, value, _) in block { raw += name.utf8.count + value.utf8.count + 8 }
        guard raw > Self.certainlyFitsBytes else { return nil }
        var encoder = HPACKEncoder(allocator: allocator)
        var buffer = allocator.buffer(capacity: raw)
        guard (try? encoder.encode(headers: block, to: &buffer)) != nil else { return raw }
        return buffer.readableBytes > Self.maxHeaderBlockBytes ? buffer.readableBytes : nil
    }

    private func answerBadGateway(
        context: ChannelHandlerContext,
        head: HTTPResponseHead,
        encodedBytes: Int,
        promise: EventLoopPromise<Void>?
    ) {
        let problem = ProblemDetails(
            status: .badGateway,
            detail: "the response head is \(encodedBytes) bytes encoded; over HTTP/2 the gateway sends at most "
                + "\(Self.maxHeaderBlockBytes)",
            instance: nil,
            requestID: head.headers.first(name: "x-request-id") ?? ""
        )
        let body = problem.jsonBody(allocator: context.channel.allocator)
        var replacement = problem.responseHead(version: head.version, bodyLength: body.readableBytes)
        if let id = head.headers.first(name: "x-request-id") {
            replacement.headers.add(name: "x-request-id", value: id)
        }
        let headers = HTTP2Frame.FramePayload.headers(.init(headers: HTTP2ResponseHeaders.make(replacement)))
        context.write(self.wrapOutboundOut(headers), promise: promise)
        context.write(self.wrapOutboundOut(.data(.init(data: .byteBuffer(body)))), promise: nil)
    }
}

@available(*, unavailable)
extension HTTP2ServerStreamCodec: Sendable {}
