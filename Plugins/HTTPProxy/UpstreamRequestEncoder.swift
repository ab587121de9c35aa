import NIOCore
import NIOHTTP1

/// Writes requests to an upstream, in place of NIO's `HTTPRequestEncoder`: a head staged as
/// bytes (``UpstreamRequestHead``) goes out as it is, and the body is framed as that head says
/// (chunks for `Transfer-Encoding: chunked`, as they are otherwise).
///
/// The proxy still writes an `HTTPClientRequestPart.head` down the pipeline for each request,
/// so the head's bytes go out in order with the body parts written after it. The head written
/// is a placeholder carrying the method; its bytes are the ones staged just before by
/// ``UpstreamConnection/write(_:)``, on the same event loop, in the same call (which also tells
/// the response decoder the method). A head written without one staged is encoded from its
/// `HTTPHeaders`.
final class UpstreamRequestEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = IOData

    private var staged: UpstreamRequestHead?
    private var framing = UpstreamRequestHead.BodyFraming.neither
    /// The CRLF after each chunk, one buffer shared by every write of it.
    private var chunkEnd: ByteBuffer?

    /// The bytes to send for the next head written down the pipeline.
    func stage(_ head: UpstreamRequestHead) {
        self.staged = head
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch Self.unwrapOutboundIn(data) {
        case .head(let head):
            let serialized: UpstreamRequestHead
            if let staged = self.staged, staged.method == head.method {
                serialized = staged
            } else {
                serialized = UpstreamRequestHead(encoding: head, allocator: context.channel.allocator)
            }
            self.staged = nil
            self.framing = serialized.framing
            context.write(Self.wrapOutboundOut(.byteBuffer(serialized.bytes)), promise: promise)
        case .body(let body):
            if self.framing == .neither && body.readableBytes > 0 {
                // A body after a head without framing (an HTTP/2 GET with DATA and no
                // content-length): the upstream would read these bytes as its next request.
                // Never sent; the connection is closed and the exchange fails.
                promise?.fail(UnframedBody())
                context.fireErrorCaught(UnframedBody())
                return
            }
            // Empty parts are not framed: an empty chunk would end the body.
            guard self.framing == .chunked, body.readableBytes > 0 else {
                context.write(Self.wrapOutboundOut(body), promise: promise)
                return
            }
            var size = context.channel.allocator.buffer(capacity: 18)
            size.writeHexadecimal(body.readableBytes)
            size.writeStaticString("\r\n")
            context.write(Self.wrapOutboundOut(.byteBuffer(size)), promise: nil)
            context.write(Self.wrapOutboundOut(body), promise: nil)
            // Writes complete in order: the last one's promise stands for all three.
            context.write(Self.wrapOutboundOut(.byteBuffer(self.crlf(context))), promise: promise)
        case .end(let trailers):
            guard self.framing == .chunked else {
                // Nothing to write; a promise still completes in order behind earlier writes.
                if let promise {
                    context.write(
                        Self.wrapOutboundOut(.byteBuffer(context.channel.allocator.buffer(capacity: 0))),
                        promise: promise
                    )
                }
                return
            }
            var last = context.channel.allocator.buffer(capacity: trailers == nil ? 5 : 256)
            last.writeStaticString("0\r\n")
            if let trailers {
                for (name, value) in trailers { last.writeField(name, value) }
            }
            last.writeStaticString("\r\n")
            context.write(Self.wrapOutboundOut(.byteBuffer(last)), promise: promise)
        }
    }

    /// Body bytes for a request whose head announced no body.
    struct UnframedBody: Error {}

    private func crlf(_ context: ChannelHandlerContext) -> ByteBuffer {
        if let chunkEnd = self.chunkEnd { return chunkEnd }
        var buffer = context.channel.allocator.buffer(capacity: 2)
        buffer.writeStaticString("\r\n")
        self.chunkEnd = buffer
        return buffer
    }
}

@available(*, unavailable)
extension UpstreamRequestEncoder: Sendable {}

extension ByteBuffer {
    /// `value` in lowercase hexadecimal, without leading zeros (a chunk size).
    mutating func writeHexadecimal(_ value: Int) {
        precondition(value >= 0)
        var digits = 1
        while value >> (4 * digits) != 0 && digits < 16 { digits += 1 }
        for index in stride(from: digits - 1, through: 0, by: -1) {
            let nibble = UInt8(truncatingIfNeeded: (value >> (4 * index)) & 0xF)
            self.writeInteger(nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10)
        }
    }
}
