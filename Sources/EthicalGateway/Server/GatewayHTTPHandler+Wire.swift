import NIOCore
import NIOHTTP1

// MARK: Where response parts leave the handler: bytes on HTTP/1.x, parts on HTTP/2

extension GatewayHTTPHandler {
    /// The write that completes a bodyless end's promise in order, without framing to send.
    private static let emptyBuffer = ByteBuffer()

    /// Writes a response head to `method`'s request: on HTTP/1.x encoded by ``responseEncoder``
    /// with `added` in the same pass, on HTTP/2 as a part with `added` applied to its fields.
    /// Returns false, having written nothing, when the head holds a field that must not go on
    /// the wire (HTTP/1.x; the HTTP/2 codec checks its own).
    func sendHead(
        _ head: HTTPResponseHead,
        adding added: HTTP1ResponseEncoder.AddedFields,
        answering method: HTTPMethod,
        context: ChannelHandlerContext
    ) -> Bool {
        guard self.isHTTP2 else {
            guard
                let bytes = self.responseEncoder.encodeHead(
                    head,
                    adding: added,
                    answering: method,
                    allocator: context.channel.allocator
                )
            else { return false }
            context.write(NIOAny(IOData.byteBuffer(bytes)), promise: nil)
            return true
        }
        var head = head
        if let requestID = added.requestID { head.headers.replaceOrAdd(name: "x-request-id", value: requestID) }
        if let hsts = added.hsts, !head.headers.contains(name: "strict-transport-security") {
            head.headers.add(name: "strict-transport-security", value: hsts)
        }
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        return true
    }

    /// Writes a part of the response body, as a chunk when the head said chunked.
    func sendBody(_ buffer: ByteBuffer, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard self.isHTTP2 else {
            if self.responseEncoder.isChunked, buffer.readableBytes > 0 {
                // Three writes, as NIO's encoder does, so the body part is not copied; writes
                // complete in order, so the last one's promise stands for all three.
                let prefix = self.responseEncoder.chunkPrefix(
                    length: buffer.readableBytes,
                    allocator: context.channel.allocator
                )
                context.write(NIOAny(IOData.byteBuffer(prefix)), promise: nil)
                context.write(NIOAny(IOData.byteBuffer(buffer)), promise: nil)
                var lineEnd = prefix
                lineEnd.moveReaderIndex(forwardBy: lineEnd.readableBytes - 2)
                context.write(NIOAny(IOData.byteBuffer(lineEnd)), promise: promise)
            } else {
                context.write(NIOAny(IOData.byteBuffer(buffer)), promise: promise)
            }
            return
        }
        context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: promise)
    }

    /// Writes the response's end: the last chunk and any trailers when chunked.
    func sendEnd(_ trailers: HTTPHeaders?, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard self.isHTTP2 else {
            if let bytes = self.responseEncoder.encodeEnd(trailers: trailers, allocator: context.channel.allocator) {
                context.write(NIOAny(IOData.byteBuffer(bytes)), promise: promise)
            } else if let promise {
                context.write(NIOAny(IOData.byteBuffer(Self.emptyBuffer)), promise: promise)
            }
            return
        }
        context.write(self.wrapOutboundOut(.end(trailers)), promise: promise)
    }
}
