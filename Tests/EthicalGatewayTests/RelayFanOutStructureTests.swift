import EthicalGateway
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import Testing

@_spi(Benchmarks) @testable import FluxerRelayPlugin

/// The structures of the relay's fan-out path: frames coalesced per connection and flush
/// (``CoalescedFrames``, ``RawFrameWriter``), and a channel's subscribers in an array
/// (``ChannelSubscribers``).
@Suite("Fluxer Relay: fan-out structures")
struct RelayFanOutStructureTests {
    /// A server frame carrying `size` bytes of text (header lengths 7, 16 and 64 bits apart).
    static func frame(_ size: Int, byte: UInt8 = UInt8(ascii: "a")) -> ByteBuffer {
        Push.frame(ByteBuffer(bytes: [UInt8](repeating: byte, count: size)))
    }

    @Test("frames come out as written: one shared frame as is, several as one buffer with each frame whole, in order")
    func coalescedFrames() throws {
        var coalesced = CoalescedFrames()
        #expect(coalesced.take() == nil)
        let single = Self.frame(10)
        coalesced.append(single)
        #expect(coalesced.readableBytes == single.readableBytes)
        #expect(coalesced.take() == single)
        #expect(coalesced.isEmpty && coalesced.take() == nil)

        let frames = [
            Self.frame(5, byte: 1), Self.frame(300, byte: 2), Self.frame(70_000, byte: 3), Self.frame(0, byte: 4),
            Self.frame(125, byte: 5),
        ]
        for frame in frames { coalesced.append(frame) }
        #expect(coalesced.readableBytes == frames.reduce(0) { $0 + $1.readableBytes })
        let taken = coalesced.take()
        let joined = try #require(taken)
        #expect(RelayFanOutProbe.frames(in: joined) == frames)
        #expect(coalesced.isEmpty)
    }

    @Test("appending to a joined buffer leaves the frames it copied untouched (the shared frames are not written to)")
    func sharedFramesUntouched() throws {
        let shared = Self.frame(20, byte: 7)
        let copy = ByteBuffer(bytes: Array(buffer: shared))
        var first = CoalescedFrames()
        var second = CoalescedFrames()
        first.append(shared)
        second.append(shared)
        first.append(Self.frame(30, byte: 8))
        second.append(Self.frame(40, byte: 9))
        #expect(shared == copy)
        let (firstTaken, secondTaken) = (first.take(), second.take())
        #expect(RelayFanOutProbe.frames(in: try #require(firstTaken)) == [shared, Self.frame(30, byte: 8)])
        #expect(RelayFanOutProbe.frames(in: try #require(secondTaken)) == [shared, Self.frame(40, byte: 9)])
    }

    @Test("the raw writer sends what was written between flushes in one write, and keeps it before later writes")
    func rawWriterCoalesces() throws {
        let channel = EmbeddedChannel()
        let writer = RawFrameWriter()
        try channel.pipeline.syncOperations.addHandler(writer)
        let frames = [Self.frame(3, byte: 1), Self.frame(200, byte: 2), Self.frame(4, byte: 3)]
        for frame in frames { writer.write(frame: frame) }
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "nothing leaves before the flush")
        writer.flush()
        let written = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(RelayFanOutProbe.frames(in: written) == frames)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "one write for the three frames")

        // A write from the handlers above (the encoder's close frame, a pong) comes after the
        // frames written before it, and a pipeline flush sends the coalesced frames too.
        writer.write(frame: Self.frame(6, byte: 4))
        let other = Self.frame(8, byte: 5)
        channel.writeAndFlush(other, promise: nil)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == Self.frame(6, byte: 4))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == other)
        writer.write(frame: Self.frame(9, byte: 6))
        channel.flush()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == Self.frame(9, byte: 6))
        _ = try channel.finish()
    }

    @Test("coalesced bytes are passed on before the flush once they reach the limit, so water marks see them")
    func rawWriterPassesOnLargeBatches() throws {
        let channel = EmbeddedChannel()
        let writer = RawFrameWriter()
        try channel.pipeline.syncOperations.addHandler(writer)
        let frame = Self.frame(1000)
        let count = RawFrameWriter.maxCoalescedBytes / frame.readableBytes + 3
        for _ in 0..<count { writer.write(frame: frame) }
        writer.flush()
        var writes: [ByteBuffer] = []
        while let written = try channel.readOutbound(as: ByteBuffer.self) { writes.append(written) }
        #expect(writes.count == 2, "\(writes.map(\.readableBytes))")
        #expect(writes.first.map { $0.readableBytes >= RawFrameWriter.maxCoalescedBytes } == true)
        #expect(writes.flatMap { RelayFanOutProbe.frames(in: $0) ?? [] }.count == count)
        _ = try channel.finish()
    }

    /// A relay on an embedded loop and `count` connections of it (never added to a channel).
    static func connections(_ count: Int) throws -> (relay: Relay, connections: [RelayConnection]) {
        let loop = EmbeddedEventLoop()
        var configuration = try JSONValue.parse(Data(#"{ "allowAnonymous": true }"#.utf8))
            .decodeStrictly(RelayConfiguration.self)
        configuration.namespaces = [:]
        let logger = Logger(label: "relay-fan-out-tests")
        let relay = Relay(
            name: "tests",
            configuration: configuration,
            engine: MemoryEngine(),
            namespaces: try NamespaceStore(configured: [:], file: nil),
            eventLoopGroup: loop,
            tokenVerifier: nil,
            apiKey: nil,
            clientScript: ByteBuffer(),
            logger: logger
        )
        let hub = relay.hub.hub(for: loop)
        let connections = (0..<count).map { _ in
            RelayConnection(
                relay: relay,
                hub: hub,
                rawWriter: RawFrameWriter(),
                identity: nil,
                format: .json,
                logger: logger
            )
        }
        return (relay, connections)
    }

    static func subscription(_ attempt: UInt64) -> RelayConnection.Subscription {
        RelayConnection.Subscription(options: NamespaceOptions(), attempt: attempt, serverSide: false)
    }

    @Test("subscribers: insert, replace and remove keep one member per connection, with its latest subscription")
    func subscriberArray() throws {
        let (_, connections) = try Self.connections(3)
        let (a, b, c) = (connections[0], connections[1], connections[2])
        let members = ChannelSubscribers()
        #expect(members.insert(a, Self.subscription(1)))
        #expect(members.insert(b, Self.subscription(2)))
        #expect(members.insert(c, Self.subscription(3)))
        #expect(!members.insert(b, Self.subscription(4)), "b was a member: its subscription is replaced")
        #expect(members.count == 3)
        #expect(members.members.first { $0.connection === b }?.subscription.attempt == 4)
        #expect(members.remove(a))
        #expect(members.members.map { ObjectIdentifier($0.connection) } == [ObjectIdentifier(c), ObjectIdentifier(b)])
        #expect(!members.remove(a))
        #expect(members.remove(b) && members.remove(c))
        #expect(members.isEmpty)
    }

    @Test("subscribers: a long random run of inserts and removes matches a set of the same operations")
    func subscriberArrayAgainstModel() throws {
        let (_, connections) = try Self.connections(40)
        let members = ChannelSubscribers()
        var model: [ObjectIdentifier: UInt64] = [:]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for step in UInt64(1)...3000 {
            // A fixed linear congruential sequence: the same run every time.
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let connection = connections[Int((state >> 33) % UInt64(connections.count))]
            let key = ObjectIdentifier(connection)
            if (state >> 20) % 3 == 0 {
                #expect(members.remove(connection) == (model.removeValue(forKey: key) != nil))
            } else {
                #expect(
                    members.insert(connection, Self.subscription(step)) == (model.updateValue(step, forKey: key) == nil)
                )
            }
            #expect(members.count == model.count)
        }
        let found = Dictionary(
            uniqueKeysWithValues: members.members.map {
                (ObjectIdentifier($0.connection), $0.subscription.attempt)
            }
        )
        #expect(found == model)
        for connection in connections { members.remove(connection) }
        #expect(members.isEmpty)
    }
}
