import NIOCore

/// The pushes only uni-directional clients get, and the message a uni-directional transport
/// writes for a frame the relay encoded.
///
/// A WebSocket client gets `{"push":{…}}` (a `Reply` holding a `Push`); a uni-directional one
/// gets the `Push` itself, as Centrifugo's uni transports write it: `{"channel":…,"pub":…}`,
/// `{"connect":…}`, `{"disconnect":…}`, and `{}` for a ping.
extension Push {
    /// `{"push":{"connect":<result>}}`: the connect result a uni-directional client gets first.
    static func connect(_ result: WireJSON) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"push\":{\"connect\":")
        result.write(to: &buffer)
        buffer.writeStaticString("}}")
        return buffer
    }

    /// `{"push":{"disconnect":{"code":…,"reason":…}}}`: why the server ends the stream.
    static func disconnect(_ disconnect: RelayDisconnect) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"push\":{\"disconnect\":")
        WireJSON.object(["code": .number(String(disconnect.code)), "reason": .string(disconnect.reason)])
            .write(to: &buffer)
        buffer.writeStaticString("}}")
        return buffer
    }

    /// The message a JSON-format WebSocket frame (see ``frame(_:opcode:)``) carries, without
    /// the `{"push":…}` around a push: a slice of `frame`, nothing copied.
    static func unidirectionalMessage(of frame: ByteBuffer) -> ByteBuffer {
        var message = frame
        guard let lengthByte = message.getInteger(at: message.readerIndex + 1, as: UInt8.self) else { return message }
        let headerBytes: Int
        switch lengthByte & 0x7F {
        case 126: headerBytes = 4
        case 127: headerBytes = 10
        default: headerBytes = 2
        }
        message.moveReaderIndex(forwardBy: min(headerBytes, message.readableBytes))
        let wrapper = "{\"push\":".utf8
        if message.readableBytes > wrapper.count + 1,
            message.readableBytesView.starts(with: wrapper)
        {
            message.moveReaderIndex(forwardBy: wrapper.count)
            message.moveWriterIndex(to: message.writerIndex - 1)
        }
        return message
    }
}
