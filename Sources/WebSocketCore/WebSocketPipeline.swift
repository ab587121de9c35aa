public import NIOCore
import NIOWebSocket

/// Builds the WebSocket layer on an upgraded channel, synchronously on its event loop.
public enum WebSocketPipeline {
    /// Adds NIO's frame decoder and encoder, its protocol error handler (close 1002, or 1009 for
    /// a frame over the limit) and a ``WebSocketMessageHandler``; the application's handler goes
    /// after them and reads ``WebSocketMessage``s.
    @discardableResult
    public static func addHandlers(
        to pipeline: ChannelPipeline.SynchronousOperations,
        maxMessageBytes: Int,
        deflate: PerMessageDeflate?,
        compressOutbound: Bool
    ) throws -> WebSocketMessageHandler {
        // A compressed frame can be a little larger than what it inflates to.
        try pipeline.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxMessageBytes + 1024)))
        try pipeline.addHandler(WebSocketFrameEncoder())
        try pipeline.addHandler(WebSocketProtocolErrorHandler())
        let handler = WebSocketMessageHandler(
            maxMessageBytes: maxMessageBytes,
            deflate: deflate,
            compressOutbound: compressOutbound
        )
        try pipeline.addHandler(handler)
        return handler
    }
}
