import EthicalGateway
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import WebSocketCore

/// One publication delivered to N subscribers inside one process, for the relay fan-out micro
/// benchmark in `Benchmarks/` (ordo-one/benchmark). SPI, not API: `@_spi(Benchmarks) import
/// FluxerRelayPlugin` is needed to see it.
///
/// The subscribers are real ``RelayConnection`` handlers on embedded channels (no sockets):
/// each connected and subscribed through the protocol, so a publish runs the engine, the hub,
/// every connection's delivery and the frame it writes; ``publish()`` then takes the frames out.
@_spi(Benchmarks)
public final class RelayFanOutProbe {
    private let loop = EmbeddedEventLoop()
    private let relay: Relay
    private let channels: [EmbeddedChannel]
    private let data = WireJSON.object(["text": .string("hello subscribers"), "n": .number("42")])

    /// Connects `subscribers` anonymous clients and subscribes each to `bench:fanout`.
    public init(subscribers: Int) throws {
        var configuration = try JSONValue.parse(Data(#"{ "allowAnonymous": true, "pingIntervalSeconds": 3600 }"#.utf8))
            .decodeStrictly(RelayConfiguration.self)
        configuration.namespaces = ["bench": NamespaceOptions(subscribe: .any, publish: .any)]
        var logger = Logger(label: "relay-benchmark")
        logger.logLevel = .critical
        self.relay = Relay(
            name: "bench",
            configuration: configuration,
            engine: MemoryEngine(),
            namespaces: try NamespaceStore(configured: configuration.namespaces, file: nil),
            eventLoopGroup: self.loop,
            tokenVerifier: nil,
            apiKey: nil,
            clientScript: ByteBuffer(),
            logger: logger
        )
        self.relay.start()
        var channels: [EmbeddedChannel] = []
        for _ in 0..<subscribers {
            let channel = EmbeddedChannel(loop: self.loop)
            let rawWriter = RawFrameWriter()
            try channel.pipeline.syncOperations.addHandler(rawWriter)
            // Frames in go through the WebSocket layer, as on a socket (minus NIO's byte codec).
            try channel.pipeline.syncOperations.addHandler(
                WebSocketMessageHandler(
                    maxMessageBytes: configuration.maxMessageBytes,
                    deflate: nil,
                    compressOutbound: false
                )
            )
            try channel.pipeline.syncOperations.addHandler(
                RelayConnection(
                    relay: self.relay,
                    hub: self.relay.hub.hub(for: self.loop),
                    rawWriter: rawWriter,
                    identity: nil,
                    format: .json,
                    logger: logger
                )
            )
            for command in [#"{"id":1,"connect":{}}"#, #"{"id":2,"subscribe":{"channel":"bench:fanout"}}"#] {
                // Client frames arrive masked: the WebSocket layer unmasks them.
                let key = WebSocketMaskingKey.random()
                var data = ByteBuffer(string: command)
                data.webSocketMask(key)
                try channel.writeInbound(WebSocketFrame(fin: true, opcode: .text, maskKey: key, data: data))
            }
            channels.append(channel)

        }
        self.channels = channels
        self.loop.run()
        let replies = try self.drain()
        guard replies == 2 * subscribers else {
            throw RelayFanOutProbeError(
                message: "expected a connect and a subscribe reply per subscriber, got \(replies) replies"
            )
        }
    }

    /// Publishes once and takes every subscriber's frame; returns how many frames were written.
    @discardableResult
    public func publish() throws -> Int {
        _ = self.relay.engine.publish(
            channel: "bench:fanout",
            data: self.data,
            info: nil,
            tags: [:],
            history: HistoryPolicy(size: 0, ttlSeconds: 60),
            idempotencyKey: nil,
            idempotencyWindow: 0,
            on: self.loop
        )
        self.loop.run()
        return try self.drain()
    }

    /// Takes every subscriber's writes and counts the whole WebSocket frames in them (frames
    /// written in one tick leave in one buffer).
    private func drain() throws -> Int {
        var count = 0
        for channel in self.channels {
            while let written = try channel.readOutbound(as: ByteBuffer.self) {
                guard let frames = Self.frames(in: written) else {
                    throw RelayFanOutProbeError(message: "a write ended inside a frame")
                }
                count += frames.count
            }
        }
        return count
    }

    /// The whole unmasked server frames in `buffer`, in order; nil if it ends inside one.
    static func frames(in buffer: ByteBuffer) -> [ByteBuffer]? {
        var buffer = buffer
        var frames: [ByteBuffer] = []
        while buffer.readableBytes > 0 {
            let at = buffer.readerIndex
            guard let marker = buffer.getInteger(at: at + 1, as: UInt8.self) else { return nil }
            var header = 2
            var length = Int(marker & 0x7F)
            if length == 126 {
                guard let extended = buffer.getInteger(at: at + 2, as: UInt16.self) else { return nil }
                header += 2
                length = Int(extended)
            } else if length == 127 {
                guard let extended = buffer.getInteger(at: at + 2, as: UInt64.self), extended <= UInt64(Int32.max)
                else { return nil }
                header += 8
                length = Int(extended)
            }
            guard let frame = buffer.readSlice(length: header + length) else { return nil }
            frames.append(frame)
        }
        return frames
    }
}

/// The probe's set-up did not end with every subscriber connected and subscribed.
struct RelayFanOutProbeError: Error, CustomStringConvertible {
    let message: String
    var description: String { self.message }
}
