import NIOCore
import NIOWebSocket

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

/// The wire protocol spoken to the server under test.
enum WireProtocol: String, Sendable {
    /// The Centrifugal client protocol v2 (JSON) of the Fluxer Relay.
    case relay
    /// The NATS text protocol, as nats-server speaks it over its WebSocket listener.
    case nats
}

/// What one event loop's connections counted. Only touched on that loop.
final class LoopStats: @unchecked Sendable {
    var delivered = 0
    var histogram = LatencyHistogram()
    var lastDeliveryNanos: UInt64 = 0
    var pingsAnswered = 0
    /// Server-side unsubscribes (the relay's slow-consumer policy) and `-ERR`s seen.
    var unsubscribed = 0
    var serverErrors = 0
    /// Connections that closed after they were ready.
    var closedWhileReady = 0
    /// Deliveries whose sequence number was not above the last one this subscriber saw
    /// (duplicated or reordered), and sequence numbers skipped over (lost, or reordered).
    var outOfOrder = 0
    var skipped = 0
}

/// One WebSocket to the server under test, as a subscriber or as the publisher.
///
/// Subscribers connect, subscribe to the bench channel, answer pings, and for every message
/// record the latency from the timestamp the publisher put in the payload (the publisher is in
/// the same process, so one monotonic clock serves both ends). The publisher connects and then
/// publishes at a fixed rate. Everything runs on the channel's event loop.
final class LoadConnection: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    enum Role { case subscriber, publisher }
    private enum State { case upgrading, handshaking, ready, closed }

    struct ConnectionError: Error, CustomStringConvertible {
        let description: String
    }

    static let relayChannel = "bench:fanout"
    static let natsSubject = "bench.fanout"

    private let wire: WireProtocol
    private let role: Role
    private let stats: LoopStats
    private let ready: EventLoopPromise<Void>
    private let readyTimeout: TimeAmount
    private var state = State.upgrading
    private var context: ChannelHandlerContext?
    /// NATS is a byte stream: the part of a protocol message a frame ended in the middle of.
    private var natsPending: ByteBuffer?
    private var timeoutTask: Scheduled<Void>?
    /// The publisher's sequence number (`"s":N`) of the last delivery.
    private var lastSequence = -1

    init(wire: WireProtocol, role: Role, stats: LoopStats, ready: EventLoopPromise<Void>, readyTimeout: TimeAmount) {
        self.wire = wire
        self.role = role
        self.stats = stats
        self.ready = ready
        self.readyTimeout = readyTimeout
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.timeoutTask = context.eventLoop.scheduleTask(in: self.readyTimeout) { [self] in
            guard self.state != .ready, self.state != .closed else { return }
            self.fail(
                ConnectionError(description: "not ready within \(self.readyTimeout.nanoseconds / 1_000_000_000) s")
            )
            self.context?.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is WebSocketUpgradeHandler.WebSocketUpgraded else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        self.state = .handshaking
        if self.wire == .relay {
            // Commands may share a frame, one per line; the relay runs them in order.
            let commands =
                self.role == .subscriber
                ? "{\"id\":1,\"connect\":{}}\n{\"id\":2,\"subscribe\":{\"channel\":\"\(Self.relayChannel)\"}}"
                : "{\"id\":1,\"connect\":{}}"
            self.send(context.channel.allocator.buffer(string: commands))
            context.flush()
        }
        // NATS: wait for INFO.
    }

    func channelInactive(context: ChannelHandlerContext) {
        if self.state == .ready { self.stats.closedWhileReady += 1 }
        self.fail(ConnectionError(description: "the server closed the connection before it was ready"))
        self.state = .closed
        self.timeoutTask?.cancel()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.fail(error)
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary, .continuation:
            switch self.wire {
            case .relay: self.readRelay(frame.data)
            case .nats: self.readNATS(frame.data)
            }
        case .ping:
            self.writeFrame(opcode: .pong, frame.data)
        case .connectionClose:
            context.close(promise: nil)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    // MARK: Relay (Centrifugal JSON)

    private func readRelay(_ data: ByteBuffer) {
        data.withUnsafeReadableBytes { bytes in
            var start = 0
            while start < bytes.count {
                var end = start
                while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
                if end > start { self.relayMessage(UnsafeRawBufferPointer(rebasing: bytes[start..<end])) }
                start = end + 1
            }
        }
    }

    private func relayMessage(_ message: UnsafeRawBufferPointer) {
        if message.count == 2 && message[0] == UInt8(ascii: "{") && message[1] == UInt8(ascii: "}") {
            self.stats.pingsAnswered += 1
            self.send(ByteBuffer(string: "{}"))  // Pong; flushed at the end of the read.
            return
        }
        if message.starts(with: Self.pushPrefix) {
            if let t = Self.find(Self.pubKey, in: message) {
                self.recordDelivery(UnsafeRawBufferPointer(rebasing: message[t...]))
            } else if Self.find(Self.unsubscribeKey, in: message) != nil {
                self.stats.unsubscribed += 1
            }
            return
        }
        guard self.state == .handshaking else { return }
        if Self.find(Self.errorKey, in: message) != nil {
            self.fail(ConnectionError(description: "relay refused: \(String(decoding: message, as: UTF8.self))"))
            self.context?.close(promise: nil)
            return
        }
        let awaited = self.role == .subscriber ? Self.subscribeReply : Self.connectReply
        if message.starts(with: awaited) { self.becomeReady() }
    }

    private static let pushPrefix = Array("{\"push\":".utf8)
    private static let pubKey = Array("\"pub\":".utf8)
    private static let unsubscribeKey = Array("\"unsubscribe\":".utf8)
    private static let errorKey = Array("\"error\":".utf8)
    private static let connectReply = Array("{\"id\":1,".utf8)
    private static let subscribeReply = Array("{\"id\":2,".utf8)
    private static let timestampKey = Array("\"t\":".utf8)
    private static let sequenceKey = Array("\"s\":".utf8)

    // MARK: NATS

    private func readNATS(_ data: ByteBuffer) {
        if var pending = self.natsPending {
            self.natsPending = nil
            var data = data
            pending.writeBuffer(&data)
            self.parseNATS(&pending)
            if pending.readableBytes > 0 { self.natsPending = pending }
        } else {
            var data = data
            self.parseNATS(&data)
            if data.readableBytes > 0 {
                // Copy the remainder so the frame's (possibly large) storage is not kept alive.
                var remainder = ByteBuffer()
                remainder.writeBuffer(&data)
                self.natsPending = remainder
            }
        }
    }

    /// Consumes every complete protocol message at the front of `buffer`.
    private func parseNATS(_ buffer: inout ByteBuffer) {
        while buffer.readableBytes > 0 {
            let consumed = buffer.withUnsafeReadableBytes { bytes -> Int? in
                guard let lineEnd = Self.find(Self.crlf, in: bytes) else { return nil }
                let line = UnsafeRawBufferPointer(rebasing: bytes[..<lineEnd])
                if line.starts(with: Self.msgPrefix) {
                    // MSG <subject> <sid> [reply-to] <#bytes>
                    var size = 0
                    var index = line.count - 1
                    var scale = 1
                    while index >= 0, line[index] >= 48, line[index] <= 57 {
                        size += Int(line[index] - 48) * scale
                        scale *= 10
                        index -= 1
                    }
                    let payloadStart = lineEnd + 2
                    guard bytes.count >= payloadStart + size + 2 else { return nil }
                    self.recordDelivery(UnsafeRawBufferPointer(rebasing: bytes[payloadStart..<(payloadStart + size)]))
                    return payloadStart + size + 2
                }
                self.natsControl(line)
                return lineEnd + 2
            }
            guard let consumed else { return }
            buffer.moveReaderIndex(forwardBy: consumed)
        }
    }

    private func natsControl(_ line: UnsafeRawBufferPointer) {
        if line.starts(with: Self.pingLine) {
            self.stats.pingsAnswered += 1
            self.send(ByteBuffer(string: "PONG\r\n"))
        } else if line.starts(with: Self.pongLine) {
            if self.state == .handshaking { self.becomeReady() }
        } else if line.starts(with: Self.infoPrefix) {
            guard self.state == .handshaking else { return }
            let connect = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n"
            let commands =
                self.role == .subscriber ? connect + "SUB \(Self.natsSubject) 1\r\nPING\r\n" : connect + "PING\r\n"
            self.send(ByteBuffer(string: commands))
        } else if line.starts(with: Self.errPrefix) {
            self.stats.serverErrors += 1
            let text = String(decoding: line, as: UTF8.self)
            if self.state == .handshaking {
                self.fail(ConnectionError(description: "nats-server refused: \(text)"))
                self.context?.close(promise: nil)
            }
        }
    }

    private static let crlf = Array("\r\n".utf8)
    private static let msgPrefix = Array("MSG ".utf8)
    private static let pingLine = Array("PING".utf8)
    private static let pongLine = Array("PONG".utf8)
    private static let infoPrefix = Array("INFO".utf8)
    private static let errPrefix = Array("-ERR".utf8)

    // MARK: Deliveries and publishing

    /// Reads the publisher's timestamp (`"t":<nanoseconds>`) from a delivered payload.
    private func recordDelivery(_ payload: UnsafeRawBufferPointer) {
        let now = NIODeadline.now().uptimeNanoseconds
        guard let key = Self.find(Self.timestampKey, in: payload) else { return }
        var index = key + Self.timestampKey.count
        var sentAt: UInt64 = 0
        while index < payload.count, payload[index] >= 48, payload[index] <= 57 {
            sentAt = sentAt &* 10 &+ UInt64(payload[index] - 48)
            index += 1
        }
        self.stats.delivered += 1
        self.stats.lastDeliveryNanos = now
        self.stats.histogram.record(micros: now > sentAt ? (now - sentAt) / 1000 : 0)
        if let key = Self.find(Self.sequenceKey, in: UnsafeRawBufferPointer(rebasing: payload[index...])) {
            var sequence = 0
            var digit = index + key + Self.sequenceKey.count
            while digit < payload.count, payload[digit] >= 48, payload[digit] <= 57 {
                sequence = sequence &* 10 &+ Int(payload[digit] - 48)
                digit += 1
            }
            if sequence <= self.lastSequence {
                self.stats.outOfOrder += 1
            } else {
                self.stats.skipped += sequence - self.lastSequence - 1
                self.lastSequence = sequence
            }
        }
    }

    /// Writes one publication stamped with the current time (not flushed).
    func publish(sequence: Int, padding: String) {
        guard self.state == .ready, let context = self.context else { return }
        let payload = "{\"t\":\(NIODeadline.now().uptimeNanoseconds),\"s\":\(sequence),\"p\":\"\(padding)\"}"
        var buffer = context.channel.allocator.buffer(capacity: payload.utf8.count + 64)
        switch self.wire {
        case .relay:
            buffer.writeString("{\"publish\":{\"channel\":\"\(Self.relayChannel)\",\"data\":")
            buffer.writeString(payload)
            buffer.writeString("}}")
        case .nats:
            buffer.writeString("PUB \(Self.natsSubject) \(payload.utf8.count)\r\n")
            buffer.writeString(payload)
            buffer.writeString("\r\n")
        }
        self.send(buffer)
    }

    func flush() {
        self.context?.flush()
    }

    // MARK: Helpers

    private func becomeReady() {
        self.state = .ready
        self.timeoutTask?.cancel()
        self.ready.succeed()
    }

    private func fail(_ error: any Error) {
        guard self.state != .ready, self.state != .closed else { return }
        self.state = .closed
        self.ready.fail(error)
    }

    /// A data frame, masked as the RFC requires of clients.
    private func send(_ data: ByteBuffer) {
        self.writeFrame(opcode: self.wire == .relay ? .text : .binary, data)
    }

    private func writeFrame(opcode: WebSocketOpcode, _ data: ByteBuffer) {
        guard let context = self.context else { return }
        let frame = WebSocketFrame(fin: true, opcode: opcode, maskKey: .random(), data: data)
        context.write(self.wrapOutboundOut(frame), promise: nil)
    }

    /// The offset of `needle` in `haystack` (memchr for the first byte, then a compare).
    private static func find(_ needle: [UInt8], in haystack: UnsafeRawBufferPointer) -> Int? {
        guard haystack.count >= needle.count, let base = haystack.baseAddress, let first = needle.first else {
            return nil
        }
        let last = haystack.count - needle.count
        var offset = 0
        while offset <= last {
            guard let hit = memchr(base + offset, Int32(first), last - offset + 1) else { return nil }
            let index = base.distance(to: UnsafeRawPointer(hit))
            if needle.withUnsafeBytes({ memcmp(base + index, $0.baseAddress!, needle.count) == 0 }) { return index }
            offset = index + 1
        }
        return nil
    }
}

/// Confined to its channel's event loop; the publisher's timer runs there too.
extension LoadConnection: @unchecked Sendable {}
