import NIOCore
import NIOWebSocket

/// The client side of the RFC 6455 opening handshake, as raw bytes: sends the `GET` with
/// `Upgrade: websocket`, waits for the `101`, then puts NIO's frame decoder and encoder in its
/// place and hands any bytes that followed the response head (nats-server sends `INFO` at once)
/// to the decoder. Fires ``WebSocketUpgraded`` so the protocol handler behind it starts.
final class WebSocketUpgradeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Fired down the pipeline once frames flow.
    struct WebSocketUpgraded {}

    struct HandshakeError: Error, CustomStringConvertible {
        let description: String
    }

    private enum State {
        case waitingForResponse(ByteBuffer?)
        case upgraded
    }

    private let host: String
    private let path: String
    private var state = State.waitingForResponse(nil)

    init(host: String, path: String) {
        self.host = host
        self.path = path
    }

    func channelActive(context: ChannelHandlerContext) {
        let key = WebSocketMaskingKey.random()  // 4 random bytes; the key needs 16.
        let keyBytes =
            Array(key) + Array(WebSocketMaskingKey.random()) + Array(WebSocketMaskingKey.random())
            + Array(WebSocketMaskingKey.random())
        var request = context.channel.allocator.buffer(capacity: 256)
        request.writeString(
            "GET \(self.path) HTTP/1.1\r\nHost: \(self.host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: \(Self.base64(keyBytes))\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        context.writeAndFlush(self.wrapInboundOut(request), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .waitingForResponse(var received) = self.state else {
            context.fireChannelRead(data)
            return
        }
        var incoming = self.unwrapInboundIn(data)
        if received == nil {
            received = incoming
        } else {
            received!.writeBuffer(&incoming)
        }
        var buffer = received!
        let headEnd = buffer.withUnsafeReadableBytes { bytes -> Int? in
            guard bytes.count >= 4 else { return nil }
            for index in 0...(bytes.count - 4)
            where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
                return index + 4
            }
            return nil
        }
        guard let headEnd else {
            guard buffer.readableBytes < 16 * 1024 else {
                context.fireErrorCaught(HandshakeError(description: "the handshake response head is over 16 KiB"))
                context.close(promise: nil)
                return
            }
            self.state = .waitingForResponse(buffer)
            return
        }
        let head = buffer.readString(length: headEnd) ?? ""
        guard head.hasPrefix("HTTP/1.1 101") else {
            let statusLine = head.split(separator: "\r\n").first.map(String.init) ?? ""
            context.fireErrorCaught(HandshakeError(description: "WebSocket upgrade refused: \(statusLine)"))
            context.close(promise: nil)
            return
        }
        self.state = .upgraded
        do {
            try context.pipeline.syncOperations.addHandlers(
                [ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 16 << 20)), WebSocketFrameEncoder()],
                position: .after(self)
            )
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(WebSocketUpgraded())
        if buffer.readableBytes > 0 {
            context.fireChannelRead(self.wrapInboundOut(buffer))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    private static func base64(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            var value: UInt32 = 0
            for (offset, byte) in chunk.enumerated() { value |= UInt32(byte) << (16 - 8 * offset) }
            for position in 0..<4 {
                output.append(
                    position <= chunk.count
                        ? Self.alphabet[Int((value >> (18 - 6 * position)) & 0x3F)] : UInt8(ascii: "=")
                )
            }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }
}

@available(*, unavailable)
extension WebSocketUpgradeHandler: Sendable {}
