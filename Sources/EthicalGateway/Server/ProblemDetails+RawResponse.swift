import NIOCore
import NIOHTTP1

extension ProblemDetails {
    /// A complete HTTP/1.1 response carrying a problem document with `Connection: close`, as
    /// bytes: for answers written on the raw connection, before (or instead of) the request's
    /// head reached the gateway's handler (a head over the limits, one not complete in time).
    static func rawHTTP1Response(
        status: HTTPResponseStatus,
        detail: String,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let problem = ProblemDetails(status: status, detail: detail, instance: nil, requestID: RequestID.generate())
        let body = problem.jsonBody(allocator: allocator)
        var head = "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\nconnection: close\r\n"
        for (name, value) in problem.responseHead(version: .http1_1, bodyLength: body.readableBytes).headers {
            head += "\(name): \(value)\r\n"
        }
        head += "x-request-id: \(problem.requestID)\r\n\r\n"
        var response = allocator.buffer(capacity: head.utf8.count + body.readableBytes)
        response.writeString(head)
        response.writeImmutableBuffer(body)
        return response
    }

    /// Writes ``rawHTTP1Response(status:detail:allocator:)`` from `context` and closes the
    /// connection once it is written; with `linger`, through ``LingeringCloseHandler`` (what the
    /// client still sends, such as the rest of an oversized head, is read and dropped first).
    static func answerRawAndClose(
        context: ChannelHandlerContext,
        status: HTTPResponseStatus,
        detail: String,
        linger: Bool
    ) {
        let response = Self.rawHTTP1Response(status: status, detail: detail, allocator: context.channel.allocator)
        context.writeAndFlush(NIOAny(response))
            .assumeIsolated().whenComplete { _ in
                if linger { LingeringCloseHandler.close(context.channel) } else { context.close(promise: nil) }
            }
    }
}
