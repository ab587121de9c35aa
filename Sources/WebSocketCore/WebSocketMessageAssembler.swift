public import NIOCore
public import NIOWebSocket

/// Turns a client's frames into messages and control events: checks what RFC 6455 asks a
/// server to check (masking, reserved bits and opcodes, fragmentation order, close payloads,
/// UTF-8 of text as it arrives) and joins fragments, inflating compressed messages, up to
/// `maxMessageBytes`. A pure state machine: no I/O; ``WebSocketMessageHandler`` acts on what
/// it returns.
public struct WebSocketMessageAssembler {
    /// What a frame amounted to.
    public enum Event {
        /// A fragment that did not finish its message.
        case none
        case message(WebSocketMessage)
        case ping(ByteBuffer)
        case pong(ByteBuffer)
        /// The peer's close frame: its code (nil when it sent none) and reason.
        case close(code: UInt16?, reason: String)
        /// The connection must be failed with this code (RFC 6455 §7.1.7).
        case fail(WebSocketErrorCode, String)
    }

    private enum State {
        case idle
        /// A message whose first frame came without FIN.
        case assembling(kind: WebSocketMessage.Kind, compressed: Bool)
    }

    private var state = State.idle
    private var buffer: ByteBuffer?
    private var utf8 = UTF8Validator()
    public let maxMessageBytes: Int
    private let deflate: PerMessageDeflate?
    private var decompressor: DeflateDecompressor?

    /// - Parameters:
    ///   - maxMessageBytes: the largest message (after inflating) accepted; larger ones fail with 1009.
    ///   - deflate: the negotiated permessage-deflate, if any; with `clientNoContextTakeover`
    ///     the decompressor is freed after each message, so an idle connection holds none.
    public init(maxMessageBytes: Int, deflate: PerMessageDeflate?) {
        self.maxMessageBytes = maxMessageBytes
        self.deflate = deflate
    }

    /// Processes one frame from `WebSocketFrameDecoder`.
    public mutating func receive(_ frame: WebSocketFrame, allocator: ByteBufferAllocator) -> Event {
        guard frame.maskKey != nil else { return .fail(.protocolError, "client frames must be masked") }
        guard !frame.rsv2 && !frame.rsv3 else { return .fail(.protocolError, "reserved bits RSV2/RSV3 set") }
        switch frame.opcode {
        case .ping, .pong, .connectionClose:
            guard !frame.rsv1 else { return .fail(.protocolError, "RSV1 set on a control frame") }
            return self.control(frame)
        case .text, .binary:
            guard case .idle = self.state else {
                return .fail(.protocolError, "a new message began before the fragmented one ended")
            }
            if frame.rsv1 && self.deflate == nil {
                return .fail(.protocolError, "RSV1 set but permessage-deflate was not negotiated")
            }
            let kind: WebSocketMessage.Kind = frame.opcode == .text ? .text : .binary
            self.utf8 = UTF8Validator()
            if frame.fin && !frame.rsv1 {
                // The common case: one uncompressed frame, no copy into an assembly buffer.
                let data = frame.unmaskedData
                if kind == .text,
                    !data.withUnsafeReadableBytes({ self.utf8.feed($0) }) || !self.utf8.isComplete
                {
                    return .fail(.dataInconsistentWithMessage, "text message is not valid UTF-8")
                }
                return .message(WebSocketMessage(kind: kind, data: data))
            }
            self.state = .assembling(kind: kind, compressed: frame.rsv1)
            self.buffer = allocator.buffer(capacity: min(frame.length * 2, self.maxMessageBytes))
            return self.append(frame, kind: kind, compressed: frame.rsv1)
        case .continuation:
            guard case .assembling(let kind, let compressed) = self.state else {
                return .fail(.protocolError, "a continuation frame without a message to continue")
            }
            guard !frame.rsv1 else { return .fail(.protocolError, "RSV1 set on a continuation frame") }
            return self.append(frame, kind: kind, compressed: compressed)
        default:
            return .fail(.protocolError, "reserved opcode \(frame.opcode)")
        }
    }

    private mutating func append(_ frame: WebSocketFrame, kind: WebSocketMessage.Kind, compressed: Bool) -> Event {
        var output = self.buffer ?? ByteBuffer()
        self.buffer = nil
        let start = output.writerIndex
        let payload = frame.unmaskedData
        if compressed {
            let decompressor = self.decompressor ?? DeflateDecompressor()
            self.decompressor = decompressor
            do {
                try payload.withUnsafeReadableBytes {
                    try decompressor.inflate($0, into: &output, limit: self.maxMessageBytes)
                }
                if frame.fin {
                    try DeflateDecompressor.messageTail.withUnsafeBytes {
                        try decompressor.inflate($0, into: &output, limit: self.maxMessageBytes)
                    }
                }
            } catch DeflateDecompressor.Failure.tooLarge {
                return self.abandon(.messageTooLarge, "message larger than \(self.maxMessageBytes) bytes")
            } catch {
                return self.abandon(.protocolError, "compressed message is not valid DEFLATE data")
            }
        } else {
            guard output.readableBytes + payload.readableBytes <= self.maxMessageBytes else {
                return self.abandon(.messageTooLarge, "message larger than \(self.maxMessageBytes) bytes")
            }
            output.writeImmutableBuffer(payload)
        }
        if kind == .text {
            let valid = output.withUnsafeReadableBytes { bytes in
                self.utf8.feed(UnsafeRawBufferPointer(rebasing: bytes[(start - output.readerIndex)...]))
            }
            guard valid, !frame.fin || self.utf8.isComplete else {
                return self.abandon(.dataInconsistentWithMessage, "text message is not valid UTF-8")
            }
        }
        guard frame.fin else {
            self.buffer = output
            return .none
        }
        self.state = .idle
        if compressed, self.deflate?.clientNoContextTakeover == true { self.decompressor = nil }
        return .message(WebSocketMessage(kind: kind, data: output))
    }

    private mutating func abandon(_ code: WebSocketErrorCode, _ reason: String) -> Event {
        self.state = .idle
        self.buffer = nil
        self.decompressor = nil
        return .fail(code, reason)
    }

    private func control(_ frame: WebSocketFrame) -> Event {
        let data = frame.unmaskedData
        switch frame.opcode {
        case .ping: return .ping(data)
        case .pong: return .pong(data)
        default: break
        }
        var payload = data
        guard payload.readableBytes != 1 else { return .fail(.protocolError, "a close frame with a 1-byte payload") }
        guard let code = payload.readInteger(as: UInt16.self) else { return .close(code: nil, reason: "") }
        guard WebSocketCloseCode.isValidReceived(code) else {
            return .fail(.protocolError, "close code \(code) is not one a peer may send")
        }
        let reasonBytes = payload.readableBytesView
        guard let reason = String(validating: reasonBytes, as: UTF8.self) else {
            return .fail(.dataInconsistentWithMessage, "close reason is not valid UTF-8")
        }
        return .close(code: code, reason: reason)
    }
}
