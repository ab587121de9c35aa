import NIOCore

/// This node's subscribers, one ``LoopHub`` per event loop: an event is encoded once per format
/// (``RelayPushFrames``) and handed to each loop once, and each loop delivers it to its own
/// connections without locks.
final class RelayHub: Sendable {
    let loopHubs: [LoopHub]
    private let byLoop: [ObjectIdentifier: LoopHub]

    init(eventLoopGroup: any EventLoopGroup, engine: any RelayEngine, metrics: RelayMetrics) {
        let hubs = eventLoopGroup.makeIterator().map { LoopHub(eventLoop: $0, engine: engine, metrics: metrics) }
        self.loopHubs = hubs
        self.byLoop = Dictionary(uniqueKeysWithValues: hubs.map { (ObjectIdentifier($0.eventLoop), $0) })
    }

    /// The hub of `eventLoop`, which must be one of the group's.
    func hub(for eventLoop: any EventLoop) -> LoopHub {
        guard let hub = self.byLoop[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("event loop \(eventLoop) is not one of the relay's")
        }
        return hub
    }

    /// Encodes `event` as a push once per format (JSON now, Protobuf on first use on each loop)
    /// and queues its delivery on every loop. Called by the engine in offset order per channel; `execute`
    /// keeps that order on each loop.
    func dispatch(_ event: RelayEvent) {
        let channel: String
        let offset: UInt64
        let frame: ByteBuffer
        var isPublication = false
        switch event {
        case .publication(let name, let publication):
            channel = name
            offset = publication.offset
            isPublication = true
            frame = Push.frame(Push.encode(channel: name, kind: "pub", body: publication.wire))
        case .encodedPublication(let name, let publicationOffset, let body):
            channel = name
            offset = publicationOffset
            isPublication = true
            frame = Push.frame(Push.encode(channel: name, kind: "pub", encodedBody: body))
        case .join(let name, let info):
            channel = name
            offset = 0
            frame = Push.frame(Push.encode(channel: name, kind: "join", body: .object(["info": info.wire])))
        case .leave(let name, let info):
            channel = name
            offset = 0
            frame = Push.frame(Push.encode(channel: name, kind: "leave", body: .object(["info": info.wire])))
        case .insufficientState(let name):
            for hub in self.loopHubs {
                hub.eventLoop.execute { hub.requireResubscribe(channel: name) }
            }
            return
        }
        let publication = isPublication
        for (index, hub) in self.loopHubs.enumerated() {
            // Each loop gets frames of its own: every subscriber retains and releases the buffer
            // it writes, and a buffer shared by two loops would bounce its reference count
            // between their cores on every delivery.
            let push = RelayPushFrames(json: index == 0 ? frame : frame.copy(), channel: channel, event: event)
            hub.eventLoop.execute {
                // Every loop sees each publication once; the first one counts it.
                if publication && index == 0 {
                    hub.metrics.publications(ChannelName(channel)?.namespace ?? "default").increment()
                }
                hub.deliver(channel: channel, offset: offset, push: push, isPublication: publication)
            }
        }
    }

    /// Runs `body` on every loop with its hub and collects the results.
    func collect<Value: Sendable>(
        on eventLoop: any EventLoop,
        _ body: @escaping @Sendable (LoopHub) -> Value
    ) -> EventLoopFuture<[Value]> {
        let futures = self.loopHubs.map { hub in hub.eventLoop.submit { body(hub) } }
        return EventLoopFuture.whenAllSucceed(futures, on: eventLoop)
    }
}

/// The connections of one event loop and what they subscribed to. Only touched on its loop.
final class LoopHub: @unchecked Sendable {
    let eventLoop: any EventLoop
    /// Told when this loop's first subscriber of a channel arrives and its last one leaves.
    private let engine: any RelayEngine
    private(set) var connections: [ObjectIdentifier: RelayConnection] = [:]
    private(set) var subscribers: [String: ChannelSubscribers] = [:]
    /// Per channel with subscribers here, the engine's answer to this loop's interest: done once
    /// the node listens to the channel's events.
    private var interest: [String: EventLoopFuture<Void>] = [:]
    var counters = RelayCounters()
    /// This loop's metric handles.
    let metrics: RelayLoopMetrics
    /// Connections that wrote since the last flush task, and whether that task is queued.
    private var pendingFlushes: [RelayConnection] = []
    private var flushTaskQueued = false

    init(eventLoop: any EventLoop, engine: any RelayEngine, metrics: RelayMetrics) {
        self.eventLoop = eventLoop
        self.engine = engine
        self.metrics = RelayLoopMetrics(metrics)
    }

    func add(_ connection: RelayConnection) {
        if self.connections.updateValue(connection, forKey: ObjectIdentifier(connection)) == nil {
            self.metrics.shared.connections.increment()
        }
    }

    func remove(_ connection: RelayConnection) {
        if self.connections.removeValue(forKey: ObjectIdentifier(connection)) != nil {
            self.metrics.shared.connections.decrement()
        }
    }

    /// Adds a subscriber with its `subscription`; the future succeeds once the node listens to
    /// the channel's events (at once when the engine delivers everything anyway), so history
    /// read after it misses nothing.
    func subscribe(
        _ connection: RelayConnection,
        _ subscription: RelayConnection.Subscription,
        to channel: String
    ) -> EventLoopFuture<Void> {
        let ready: EventLoopFuture<Void>
        if let pending = self.interest[channel] {
            ready = pending
        } else {
            ready = self.engine.retainChannel(channel, on: self.eventLoop)
            self.interest[channel] = ready
        }
        let members: ChannelSubscribers
        if let existing = self.subscribers[channel] {
            members = existing
        } else {
            members = ChannelSubscribers()
            self.subscribers[channel] = members
        }
        if members.insert(connection, subscription) {
            self.metrics.subscriptions(ChannelName(channel)?.namespace ?? "default").increment()
        }
        return ready
    }

    func unsubscribe(_ connection: RelayConnection, from channel: String) {
        guard let members = self.subscribers[channel], members.remove(connection) else { return }
        self.metrics.subscriptions(ChannelName(channel)?.namespace ?? "default").decrement()
        if members.isEmpty {
            self.subscribers[channel] = nil
            self.interest[channel] = nil
            _ = self.engine.releaseChannel(channel, on: self.eventLoop)
        }
    }

    /// Flushes `connection` in the loop's next flush task: one task per tick for all connections,
    /// queued behind the deliveries already waiting, so several publications leave in one write.
    func requestFlush(_ connection: RelayConnection) {
        self.pendingFlushes.append(connection)
        guard !self.flushTaskQueued else { return }
        self.flushTaskQueued = true
        self.eventLoop.execute { [self] in
            self.flushTaskQueued = false
            let connections = self.pendingFlushes
            self.pendingFlushes.removeAll(keepingCapacity: true)
            for connection in connections { connection.performFlush() }
        }
    }

    /// Unsubscribes every subscriber of `channel` here with code 2500, so they recover.
    func requireResubscribe(channel: String) {
        guard let members = self.subscribers[channel]?.members else { return }
        for member in members where !member.subscription.ended {
            member.connection.unsubscribeByServer(channel, .insufficientState)
        }
    }

    /// Delivers an event to this loop's subscribers of `channel`: one lookup of the channel,
    /// then a walk over its subscriber array.
    func deliver(channel: String, offset: UInt64, push: RelayPushFrames, isPublication: Bool) {
        guard let members = self.subscribers[channel]?.members else { return }
        for member in members where !member.subscription.ended {
            member.connection.deliver(
                to: member.subscription,
                channel: channel,
                offset: offset,
                push: push,
                isPublication: isPublication
            )
        }
    }
}

/// Counters of one loop, summed for `GET stats`.
struct RelayCounters: Sendable {
    /// Commands received from clients.
    var commandsIn = 0
    /// Pushes written to clients (publications, joins, leaves).
    var pushesOut = 0
    /// Publications dropped from slow connections' queues (the clients recover them).
    var publicationsDropped = 0
    /// Connections closed for being too slow.
    var slowDisconnects = 0
    /// Connections accepted since start.
    var connectionsAccepted = 0
    /// Connections the relay closed whose sockets are still open: the close frame is on its
    /// way, for ``WebSocketRelayTransport/closeFrameTimeout`` and then, over TLS, up to the TLS
    /// handler's shutdown timeout (5 s) for a `close_notify` the peer may never take either.
    var closingConnections = 0

    static func + (lhs: RelayCounters, rhs: RelayCounters) -> RelayCounters {
        RelayCounters(
            commandsIn: lhs.commandsIn + rhs.commandsIn,
            pushesOut: lhs.pushesOut + rhs.pushesOut,
            publicationsDropped: lhs.publicationsDropped + rhs.publicationsDropped,
            slowDisconnects: lhs.slowDisconnects + rhs.slowDisconnects,
            connectionsAccepted: lhs.connectionsAccepted + rhs.connectionsAccepted,
            closingConnections: lhs.closingConnections + rhs.closingConnections
        )
    }
}

/// Encodes server-to-client messages of the protocol.
enum Push {
    /// The opcodes of the frames the relay writes itself.
    enum Opcode: UInt8 {
        case text = 0x1
        case binary = 0x2
    }

    /// A whole server-to-client WebSocket frame (unmasked, final) carrying `text`; a text
    /// frame unless `opcode` says binary (the Protobuf format).
    static func frame(_ text: ByteBuffer, opcode: Opcode = .text) -> ByteBuffer {
        var text = text
        let length = text.readableBytes
        var frame = ByteBuffer()
        frame.reserveCapacity(length + 10)
        frame.writeInteger(0x80 | opcode.rawValue)  // FIN and the opcode
        if length < 126 {
            frame.writeInteger(UInt8(length))
        } else if length <= Int(UInt16.max) {
            frame.writeInteger(UInt8(126))
            frame.writeInteger(UInt16(length))
        } else {
            frame.writeInteger(UInt8(127))
            frame.writeInteger(UInt64(length))
        }
        frame.writeBuffer(&text)
        return frame
    }

    /// A server ping of the protocol (`{}`), framed.
    static let ping = Push.frame(ByteBuffer(string: "{}"))

    /// `{"push":{"channel":…,"<kind>":…}}`.
    static func encode(channel: String, kind: StaticString, body: WireJSON) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"push\":{\"channel\":")
        buffer.writeJSONString(channel)
        buffer.writeStaticString(",\"")
        buffer.writeStaticString(kind)
        buffer.writeStaticString("\":")
        body.write(to: &buffer)
        buffer.writeStaticString("}}")
        return buffer
    }

    /// `{"push":{"channel":…,"<kind>":<encodedBody>}}` around a body already encoded as JSON.
    static func encode(channel: String, kind: StaticString, encodedBody: ByteBuffer) -> ByteBuffer {
        var body = encodedBody
        var buffer = ByteBuffer()
        buffer.reserveCapacity(body.readableBytes + channel.utf8.count + 32)
        buffer.writeStaticString("{\"push\":{\"channel\":")
        buffer.writeJSONString(channel)
        buffer.writeStaticString(",\"")
        buffer.writeStaticString(kind)
        buffer.writeStaticString("\":")
        buffer.writeBuffer(&body)
        buffer.writeStaticString("}}")
        return buffer
    }

    /// `{"push":{"channel":…,"unsubscribe":{"code":…,"reason":…}}}`.
    static func unsubscribe(channel: String, _ reason: RelayUnsubscribe) -> ByteBuffer {
        Self.encode(
            channel: channel,
            kind: "unsubscribe",
            body: .object(["code": .number(String(reason.code)), "reason": .string(reason.reason)])
        )
    }

    /// `{"id":…,"<method>":<result>}`.
    static func reply(id: UInt64, method: String, result: WireJSON) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"id\":")
        buffer.writeString(String(id))
        buffer.writeStaticString(",")
        buffer.writeJSONString(method)
        buffer.writeStaticString(":")
        result.write(to: &buffer)
        buffer.writeStaticString("}")
        return buffer
    }

    /// `{"id":…,"error":{"code":…,"message":…}}`.
    static func error(id: UInt64, _ error: RelayError) -> ByteBuffer {
        var members: [String: WireJSON] = [
            "code": .number(String(error.code)), "message": .string(error.message),
        ]
        if error.temporary { members["temporary"] = .bool(true) }
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"id\":")
        buffer.writeString(String(id))
        buffer.writeStaticString(",\"error\":")
        WireJSON.object(members).write(to: &buffer)
        buffer.writeStaticString("}")
        return buffer
    }
}
