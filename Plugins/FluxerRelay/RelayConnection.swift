import DequeModule
import EthicalGateway
import Foundation
import Logging
import NIOCore
import NIOWebSocket
import WebSocketCore

/// One client of the Centrifugal client protocol v2: a WebSocket in the format its handshake
/// chose (``RelayFormat``: JSON or Protobuf), commands in, replies and pushes out; or a
/// uni-directional stream (``UniStreamTransport``), its connect request in, pushes out. Lives
/// on its channel's event loop; everything here runs there.
///
/// This file holds the state, the channel events and the command dispatch; each concern has a
/// file of its own: `+Connect` (who the client is, expiry, `refresh`), `+Subscriptions`
/// (subscribe, recovery, deliveries), `+Commands` (publish, presence, history), `+Outbound`
/// (replies, the queue, the slow-consumer policy) and `+Lifecycle` (pings, closing).
final class RelayConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketMessage
    typealias OutboundOut = WebSocketFrame

    enum Phase { case awaitingConnect, connecting, connected, closed }

    /// One channel this connection subscribed to (or is subscribing to). A reference shared
    /// with the loop hub's ``ChannelSubscribers``, so a delivery reaches it without a lookup.
    final class Subscription {
        var subscribed = false
        let options: NamespaceOptions
        /// The offset of the last publication written; later deliveries at or below it are duplicates.
        var lastOffset: UInt64 = 0
        /// Pushes that arrived while the subscribe reply was being prepared.
        var held: [(offset: UInt64, push: RelayPushFrames, isPublication: Bool)] = []
        /// Tells this subscribe apart from a later one to the same channel.
        let attempt: UInt64
        /// Whether the server subscribed the connection (the token's channels claim) rather
        /// than a `subscribe` command.
        let serverSide: Bool
        /// Set when the subscription is dropped: a delivery already under way skips it.
        var ended = false

        init(options: NamespaceOptions, attempt: UInt64, serverSide: Bool) {
            self.options = options
            self.attempt = attempt
            self.serverSide = serverSide
        }
    }

    /// A frame waiting for the socket; `channel` is set for publications, which a slow
    /// connection may drop.
    struct Queued {
        let frame: ByteBuffer
        let channel: String?
    }

    let relay: Relay
    let hub: LoopHub
    /// Where frames go: the WebSocket, or a uni-directional HTTP stream.
    let transport: any RelayTransport
    let upgradeIdentity: VerifiedIdentity?
    /// The serialization format of every frame in and out.
    let format: RelayFormat
    let logger: Logger
    var context: ChannelHandlerContext?
    var phase = Phase.awaitingConnect
    let clientID = UUID().uuidString.lowercased()
    var identity: VerifiedIdentity?
    /// The connection's user (the token's subject); empty for anonymous connections.
    var user = ""
    var connInfo: WireJSON?
    var admittedUser: String?
    var permissions = ChannelPermissions(user: "", scopes: [], channelGrants: [], publishScope: "")
    var subscriptions: [String: Subscription] = [:]
    var subscribeAttempts: UInt64 = 0
    /// Commands (encoded, in the connection's format) received while the connect command was
    /// being verified, and their bytes; bounded by ``maxPendingCommands`` and ``maxPendingBytes``.
    var pendingCommands: [[UInt8]] = []
    var pendingBytes = 0

    var queue = Deque<Queued>()
    var queuedBytes = 0
    var flushScheduled = false

    var tokens: Double
    var tokensRefilledAt = NIODeadline.now()
    var lastHeard = NIODeadline.now()
    var pingTask: RepeatedTask?
    var deadlineTask: Scheduled<Void>?
    var expiryTask: Scheduled<Void>?

    /// A connection over a WebSocket whose pipeline holds `rawWriter`.
    convenience init(
        relay: Relay,
        hub: LoopHub,
        rawWriter: RawFrameWriter,
        identity: VerifiedIdentity?,
        format: RelayFormat,
        logger: Logger
    ) {
        self.init(
            relay: relay,
            hub: hub,
            transport: WebSocketRelayTransport(rawWriter: rawWriter, hub: hub),
            identity: identity,
            format: format,
            logger: logger
        )
    }

    init(
        relay: Relay,
        hub: LoopHub,
        transport: any RelayTransport,
        identity: VerifiedIdentity?,
        format: RelayFormat,
        logger: Logger
    ) {
        self.relay = relay
        self.hub = hub
        self.transport = transport
        self.upgradeIdentity = identity
        self.format = format
        self.logger = logger
        self.tokens = Double(relay.configuration.commandBurst)
    }

    var configuration: RelayConfiguration { self.relay.configuration }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        (self.transport as? WebSocketRelayTransport)?.context = context
        self.attach()
    }

    /// Joins the loop's hub (stats, server API, shutdown) and starts waiting for `connect`.
    func attach() {
        self.hub.add(self)
        self.hub.counters.connectionsAccepted += 1
        self.startConnectDeadline()
    }

    /// Closes the connection unless `connect` succeeds within `connectTimeoutSeconds` from now.
    func startConnectDeadline() {
        self.deadlineTask?.cancel()
        let timeout = TimeAmount.seconds(Int64(self.configuration.connectTimeoutSeconds))
        self.deadlineTask = self.hub.eventLoop.scheduleTask(in: timeout) { [weak self] in
            guard let self, self.phase != .connected else { return }
            self.disconnect(RelayDisconnect.stale.with(reason: "stale: no connect command in time"))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.tearDown()
        self.socketClosed()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.tearDown()
        self.socketClosed()
        self.context = nil
        (self.transport as? WebSocketRelayTransport)?.context = nil
    }

    /// The socket (or stream) is gone: nothing left to wait for.
    func socketClosed() {
        self.transport.closed()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.logger.debug("relay connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Tell clients to reconnect elsewhere, spread out so they do not all come back at once.
            let spread = self.configuration.shutdownSpreadSeconds
            let delay = spread > 0 ? Double.random(in: 0..<spread) : 0
            context.eventLoop.scheduleTask(in: .milliseconds(Int64(delay * 1000))) { [weak self] in
                self?.disconnect(.shutdown)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.drainQueue() }
        context.fireChannelWritabilityChanged()
    }

    /// A whole message from the WebSocket layer (fragments joined, pings answered, the close
    /// handshake and protocol errors handled there).
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = self.unwrapInboundIn(data)
        self.lastHeard = .now()
        switch (message.kind, self.format) {
        case (.text, .json):
            message.data.withUnsafeReadableBytes { bytes in
                for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
                    self.receive(Array(line))
                }
            }
        case (.binary, .protobuf):
            let commands: [[UInt8]]
            do {
                commands = try ProtobufFraming.split(message.data)
            } catch {
                self.disconnect(RelayDisconnect.badRequest.with(reason: "bad request: \(error)"))
                return
            }
            for command in commands { self.receive(command) }
        case (.binary, .json):
            self.disconnect(
                RelayDisconnect.badRequest.with(
                    reason: "bad request: a binary frame; Protobuf needs the centrifuge-protobuf subprotocol"
                )
            )
        case (.text, .protobuf):
            self.disconnect(
                RelayDisconnect.badRequest.with(reason: "bad request: a text frame on a Protobuf connection")
            )
        }
    }

    /// One encoded command of a frame: run now, or held while `connect` is being verified.
    func receive(_ command: [UInt8]) {
        switch self.phase {
        case .closed: return
        case .connecting: self.holdWhileConnecting(command)
        case .awaitingConnect, .connected: self.handleCommand(command)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    // MARK: Commands

    /// Decodes one command in the connection's format and runs it.
    func handleCommand(_ encoded: [UInt8]) {
        let decoded: RelayCommand.Decoded
        switch self.format {
        case .json: decoded = RelayCommand.decode(json: encoded)
        case .protobuf: decoded = RelayCommand.decode(protobuf: encoded)
        }
        let command: RelayCommand
        switch decoded {
        case .malformed(let reason):
            self.disconnect(RelayDisconnect.badRequest.with(reason: reason))
            return
        case .pong:
            self.hub.counters.commandsIn += 1
            return  // Hearing from the client is all that counts.
        case .invalid(let id, let error):
            self.hub.counters.commandsIn += 1
            self.reply(id: id, error: error)
            return
        case .command(let value):
            self.hub.counters.commandsIn += 1
            command = value
        }
        let id = command.id
        let method = command.method
        let params = command.params
        if self.phase == .awaitingConnect {
            guard method == "connect" else {
                self.disconnect(RelayDisconnect.badRequest.with(reason: "bad request: connect first"))
                return
            }
            if let typeError = command.parameterError ?? CommandParameters.typeError(method: method, params: params) {
                self.disconnect(RelayDisconnect.badRequest.with(reason: typeError.message))
                return
            }
            self.connect(id: id, params: params)
            return
        }
        guard self.takeCommandToken() else {
            if id > 0 { self.reply(id: id, error: .tooManyRequests) }
            return
        }
        if let typeError = command.parameterError ?? CommandParameters.typeError(method: method, params: params) {
            self.reply(id: id, error: typeError)
            return
        }
        switch method {
        case "connect":
            self.disconnect(RelayDisconnect.badRequest.with(reason: "bad request: already connected"))
        case "subscribe": self.subscribe(id: id, params: params)
        case "unsubscribe": self.unsubscribe(id: id, params: params)
        case "publish": self.publish(id: id, params: params)
        case "presence": self.presence(id: id, params: params, stats: false)
        case "presence_stats": self.presence(id: id, params: params, stats: true)
        case "history": self.history(id: id, params: params)
        case "refresh": self.refresh(id: id, params: params)
        case "sub_refresh": self.subRefresh(id: id, params: params)
        case "ping": self.reply(id: id, method: "ping", result: .object([:]))
        case "send": break  // Asynchronous messages to the server: nothing here handles them.
        case "rpc": self.reply(id: id, error: .methodNotFound)
        default:
            self.reply(id: id, error: RelayError.methodNotFound.with(message: "method not found: \(method)"))
        }
    }

    /// A token bucket: `commandsPerSecond` on average, `commandBurst` at once.
    func takeCommandToken() -> Bool {
        let now = NIODeadline.now()
        let elapsed = Double((now - self.tokensRefilledAt).nanoseconds) / 1e9
        self.tokensRefilledAt = now
        self.tokens = min(
            Double(self.configuration.commandBurst),
            self.tokens + elapsed * Double(self.configuration.commandsPerSecond)
        )
        guard self.tokens >= 1 else { return false }
        self.tokens -= 1
        return true
    }

    // MARK: Pushes and the outbound queue

    // MARK: Pings, expiry and closing

}

/// Confined to its channel's event loop: NIO calls it there, and every future and timer it
/// waits for completes there (futures of the loop's own hub and engine calls).
extension RelayConnection: @unchecked Sendable {}

extension RelayDisconnect {
    /// The same code with a more specific reason (kept within a close frame's 123 bytes).
    func with(reason: String) -> RelayDisconnect {
        RelayDisconnect(code: self.code, reason: reason)
    }
}
