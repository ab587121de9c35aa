import DequeModule
import EthicalGateway
import Foundation
import Logging
import NIOCore
import NIOWebSocket

/// One client's WebSocket, speaking the Centrifugal client protocol v2 (JSON): commands in,
/// replies and pushes out. Lives on its channel's event loop; everything here runs there.
final class RelayConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private enum Phase { case awaitingConnect, connecting, connected, closed }

    /// One channel this connection subscribed to (or is subscribing to).
    private struct Subscription {
        var subscribed = false
        let options: NamespaceOptions
        /// The offset of the last publication written; later deliveries at or below it are duplicates.
        var lastOffset: UInt64 = 0
        /// Pushes that arrived while the subscribe reply was being prepared.
        var held: [(offset: UInt64, frame: ByteBuffer, isPublication: Bool)] = []
        /// Tells this subscribe apart from a later one to the same channel.
        let attempt: UInt64
    }

    /// A frame waiting for the socket; `channel` is set for publications, which a slow
    /// connection may drop.
    private struct Queued {
        let frame: ByteBuffer
        let channel: String?
    }

    private let relay: Relay
    private let hub: LoopHub
    private let rawWriter: RawFrameWriter
    private let upgradeIdentity: VerifiedIdentity?
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var phase = Phase.awaitingConnect
    let clientID = UUID().uuidString.lowercased()
    private var identity: VerifiedIdentity?
    private(set) var user = ""
    private var connInfo: WireJSON?
    private var admittedUser: String?
    private var permissions = ChannelPermissions(user: "", scopes: [], channelGrants: [], publishScope: "")
    private var subscriptions: [String: Subscription] = [:]
    private var subscribeAttempts: UInt64 = 0
    /// Lines received while the connect command was being verified, and their bytes; bounded
    /// by ``maxPendingLines`` and ``maxPendingBytes``.
    private var pendingLines: [[UInt8]] = []
    private var pendingBytes = 0

    private var queue = Deque<Queued>()
    private var queuedBytes = 0
    private var flushScheduled = false

    private var tokens: Double
    private var tokensRefilledAt = NIODeadline.now()
    private var lastHeard = NIODeadline.now()
    private var pingTask: RepeatedTask?
    private var deadlineTask: Scheduled<Void>?
    private var expiryTask: Scheduled<Void>?
    /// Closes the socket if the close frame has not left by then.
    private var closeTimeoutTask: Scheduled<Void>?
    /// Whether this connection counts in the hub's `closingConnections`.
    private var countedAsClosing = false

    init(relay: Relay, hub: LoopHub, rawWriter: RawFrameWriter, identity: VerifiedIdentity?, logger: Logger) {
        self.relay = relay
        self.hub = hub
        self.rawWriter = rawWriter
        self.upgradeIdentity = identity
        self.logger = logger
        self.tokens = Double(relay.configuration.commandBurst)
    }

    private var configuration: RelayConfiguration { self.relay.configuration }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.hub.add(self)
        self.hub.counters.connectionsAccepted += 1
        self.startConnectDeadline()
    }

    /// Closes the connection unless `connect` succeeds within `connectTimeoutSeconds` from now.
    private func startConnectDeadline() {
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
    }

    /// The socket is gone: nothing left to wait for.
    private func socketClosed() {
        self.closeTimeoutTask?.cancel()
        self.closeTimeoutTask = nil
        if self.countedAsClosing {
            self.countedAsClosing = false
            self.hub.counters.closingConnections -= 1
        }
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

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        guard frame.maskKey != nil else {
            self.closeWebSocket(code: .protocolError, reason: "client frames must be masked")
            return
        }
        self.lastHeard = .now()
        switch frame.opcode {
        case .text:
            let payload = frame.unmaskedData
            payload.withUnsafeReadableBytes { bytes in
                for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
                    guard self.phase != .closed else { return }
                    if self.phase == .connecting {
                        self.holdWhileConnecting(Array(line))
                    } else {
                        self.handleLine(Array(line))
                    }
                }
            }
        case .binary:
            self.disconnect(
                RelayDisconnect.badRequest.with(reason: "bad request: binary (Protobuf) frames are not supported")
            )
        case .ping:
            var data = frame.unmaskedData
            self.write(WebSocketFrame(fin: true, opcode: .pong, data: data.readSlice(length: data.readableBytes)!))
            self.scheduleFlush()
        case .connectionClose:
            var data = frame.unmaskedData
            let code = data.readInteger(as: UInt16.self) ?? 1000
            self.closeWebSocket(code: WebSocketErrorCode(codeNumber: Int(code)), reason: "")
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    // MARK: Commands

    private func handleLine(_ line: [UInt8]) {
        let command: WireJSON
        do {
            command = try WireJSON.parse(line)
        } catch {
            self.disconnect(RelayDisconnect.badRequest.with(reason: "bad request: \(error)"))
            return
        }
        guard case .object(let members) = command else {
            self.disconnect(RelayDisconnect.badRequest.with(reason: "bad request: a command is a JSON object"))
            return
        }
        self.hub.counters.commandsIn += 1
        if members.isEmpty { return }  // A pong: hearing from the client is all that counts.
        let id = members["id"]?.unsignedValue ?? 0
        let methods = members.keys.filter { $0 != "id" }
        guard methods.count == 1, let method = methods.first, let params = members[method] else {
            self.reply(
                id: id,
                error: RelayError.badRequest.with(message: "bad request: a command has exactly one method")
            )
            return
        }
        guard case .object = params else {
            self.reply(id: id, error: RelayError.badRequest.with(message: "bad request: \(method) must be an object"))
            return
        }
        if self.phase == .awaitingConnect {
            guard method == "connect" else {
                self.disconnect(RelayDisconnect.badRequest.with(reason: "bad request: connect first"))
                return
            }
            self.connect(id: id, params: params)
            return
        }
        guard self.takeCommandToken() else {
            if id > 0 { self.reply(id: id, error: .tooManyRequests) }
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
    private func takeCommandToken() -> Bool {
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

    private func connect(id: UInt64, params: WireJSON) {
        self.phase = .connecting
        if let token = params["token"]?.stringValue, !token.isEmpty {
            self.relay.authenticator.verify(token, on: self.hub.eventLoop).whenSuccess { [self] outcome in
                guard self.phase == .connecting else { return }
                switch outcome {
                case .success(let identity):
                    self.completeConnect(id: id, identity: identity)
                case .failure(.notAccepted):
                    self.reply(
                        id: id,
                        error: RelayError.unauthorized.with(message: "unauthorized: this relay takes no connect tokens")
                    )
                    self.disconnect(.invalidToken)
                case .failure(.refused(let refusal)):
                    self.refuseToken(id: id, refusal)
                case .failure(.failed):
                    self.reply(id: id, error: .internal)
                    self.disconnect(.serverError)
                }
            }
        } else if let identity = self.upgradeIdentity {
            self.completeConnect(id: id, identity: identity)
        } else if self.configuration.allowAnonymous {
            self.completeConnect(id: id, identity: nil)
        } else {
            self.reply(id: id, error: RelayError.unauthorized.with(message: "unauthorized: a token is needed"))
            self.disconnect(.invalidToken)
        }
    }

    private func refuseToken(id: UInt64, _ refusal: TokenRefusal) {
        guard self.phase != .closed else { return }
        if refusal.category == .expired {
            // The client fetches a new token and connects again.
            self.reply(id: id, error: RelayError.tokenExpired)
            self.phase = .awaitingConnect
            self.startConnectDeadline()
            self.runPendingLines()
        } else {
            self.reply(id: id, error: RelayError.unauthorized.with(message: "unauthorized: \(refusal.reason)"))
            self.disconnect(RelayDisconnect.invalidToken.with(reason: "invalid token: \(refusal.reason)"))
        }
    }

    private func completeConnect(id: UInt64, identity: VerifiedIdentity?) {
        guard self.phase == .connecting else { return }
        let user = identity?.subject ?? ""
        if identity != nil && user.isEmpty {
            self.reply(id: id, error: RelayError.unauthorized.with(message: "unauthorized: the token has no subject"))
            self.disconnect(.invalidToken)
            return
        }
        guard self.relay.admitConnection(of: user) else {
            self.disconnect(RelayDisconnect.connectionLimit)
            return
        }
        self.admittedUser = user
        self.identity = identity
        self.user = user
        self.connInfo = identity?.claim("info").map(WireJSON.init)
        self.permissions = self.permissions(for: identity)
        self.phase = .connected
        self.deadlineTask?.cancel()
        self.deadlineTask = nil
        self.startPings()
        var result: [String: WireJSON] = [
            "client": .string(self.clientID),
            "version": .string(GatewayVersion.current),
            "ping": .number(String(self.configuration.pingIntervalSeconds)),
            "pong": .bool(true),
        ]
        if let identity {
            result["expires"] = .bool(true)
            result["ttl"] = .number(String(self.scheduleExpiry(at: identity.expiresAt)))
        }
        self.reply(id: id, method: "connect", result: .object(result))
        self.runPendingLines()
    }

    /// Commands a client may send behind `connect` before its reply: SDKs send a few (the
    /// subscriptions they restore); more is a client that does not wait for the reply.
    static let maxPendingLines = 32

    /// Bytes of commands a client may send behind `connect` before its reply: one message's worth.
    private var maxPendingBytes: Int { self.configuration.maxMessageBytes }

    /// Keeps a command that arrived while `connect` is verified, to run once it is answered.
    ///
    /// Past ``maxPendingLines`` or ``maxPendingBytes`` the client is closed with 3501 (bad
    /// request). Centrifugo never buffers here: it handles one command at a time and does not
    /// read the next until `connect` is answered, so a client cannot pile commands up; its code
    /// for a client that breaks the command order is 3501 ("malformed protocol frames or wrong
    /// order of commands"), which is also terminal, so the client does not reconnect to do it
    /// again. 3009 is Centrifugo's write error and would tell the client to reconnect.
    private func holdWhileConnecting(_ line: [UInt8]) {
        guard self.pendingLines.count < Self.maxPendingLines,
            self.pendingBytes + line.count <= self.maxPendingBytes
        else {
            self.pendingLines = []
            self.pendingBytes = 0
            self.disconnect(
                RelayDisconnect.badRequest.with(reason: "bad request: too many commands before the connect reply")
            )
            return
        }
        self.pendingLines.append(line)
        self.pendingBytes += line.count
    }

    private func runPendingLines() {
        let lines = self.pendingLines
        self.pendingLines = []
        self.pendingBytes = 0
        for line in lines where self.phase != .closed {
            if self.phase == .connecting {
                self.holdWhileConnecting(line)
            } else {
                self.handleLine(line)
            }
        }
    }

    private func permissions(for identity: VerifiedIdentity?) -> ChannelPermissions {
        var grants: [String] = []
        switch identity?.claim(self.configuration.channelsClaim) {
        case .array(let values)?: grants = values.compactMap(\.stringValue)
        case .string(let value)?: grants = value.split(separator: " ").map(String.init)
        default: break
        }
        return ChannelPermissions(
            user: identity?.subject ?? "",
            scopes: identity?.scopes ?? [],
            channelGrants: grants,
            publishScope: self.configuration.publishScope
        )
    }

    /// Disconnects the connection when its token expires (after the grace a refresh may take).
    /// - Returns: the seconds until expiry, for the reply's `ttl`.
    private func scheduleExpiry(at expiresAt: Double) -> Int {
        self.expiryTask?.cancel()
        let remaining = max(0, expiresAt - Date().timeIntervalSince1970)
        let grace = Double(self.configuration.pongTimeoutSeconds)
        self.expiryTask = self.hub.eventLoop.scheduleTask(in: .milliseconds(Int64((remaining + grace) * 1000))) {
            [weak self] in
            self?.disconnect(.expired)
        }
        return max(1, Int(remaining.rounded(.down)))
    }

    private func refresh(id: UInt64, params: WireJSON) {
        guard let token = params["token"]?.stringValue, !token.isEmpty else {
            self.reply(id: id, error: RelayError.badRequest.with(message: "bad request: refresh needs a token"))
            return
        }
        self.relay.authenticator.verify(token, on: self.hub.eventLoop).whenSuccess { [self] outcome in
            guard self.phase == .connected else { return }
            switch outcome {
            case .success(let identity):
                guard identity.subject == self.identity?.subject || (self.identity == nil && self.user.isEmpty) else {
                    self.reply(
                        id: id,
                        error: RelayError.permissionDenied.with(
                            message: "permission denied: the token is for another user"
                        )
                    )
                    return
                }
                let user = identity.subject ?? ""
                if self.identity == nil, !user.isEmpty {
                    // An anonymous connection becomes its user's only through a new connect.
                    self.reply(
                        id: id,
                        error: RelayError.permissionDenied.with(message: "permission denied: reconnect to change user")
                    )
                    return
                }
                self.identity = identity
                self.permissions = self.permissions(for: identity)
                let ttl = self.scheduleExpiry(at: identity.expiresAt)
                self.reply(
                    id: id,
                    method: "refresh",
                    result: .object([
                        "client": .string(self.clientID), "version": .string(GatewayVersion.current),
                        "expires": .bool(true), "ttl": .number(String(ttl)),
                    ])
                )
            case .failure(.notAccepted):
                self.reply(
                    id: id,
                    error: RelayError.unauthorized.with(message: "unauthorized: this relay takes no refresh tokens")
                )
            case .failure(.refused(let refusal)):
                let error = refusal.category == .expired ? RelayError.tokenExpired : RelayError.unauthorized
                self.reply(id: id, error: error.with(message: "\(error.message): \(refusal.reason)"))
            case .failure(.failed):
                self.reply(id: id, error: .internal)
            }
        }
    }

    private func subRefresh(id: UInt64, params: WireJSON) {
        guard let channel = params["channel"]?.stringValue, self.subscriptions[channel]?.subscribed == true else {
            self.reply(
                id: id,
                error: RelayError.badRequest.with(message: "bad request: not subscribed to that channel")
            )
            return
        }
        // Subscriptions carry no tokens of their own: the connection's token grants them.
        self.reply(id: id, method: "sub_refresh", result: .object(["expires": .bool(false)]))
    }

    private func clientInfo() -> ClientInfo {
        ClientInfo(user: self.user, client: self.clientID, connInfo: self.connInfo)
    }

    private func subscribe(id: UInt64, params: WireJSON) {
        guard let channel = self.channelParameter(id: id, params: params, method: "subscribe") else { return }
        if params["token"]?.stringValue.map({ !$0.isEmpty }) == true {
            self.reply(
                id: id,
                error: RelayError.badRequest.with(
                    message: "bad request: subscription tokens are not supported; the connection token grants channels"
                )
            )
            return
        }
        guard let resolved = self.resolve(channel, replyingTo: id) else { return }
        guard self.subscriptions[channel] == nil else {
            self.reply(id: id, error: .alreadySubscribed)
            return
        }
        guard self.subscriptions.count < self.configuration.maxSubscriptionsPerConnection else {
            self.reply(
                id: id,
                error: RelayError.limitExceeded.with(
                    message: "limit exceeded: at most \(self.configuration.maxSubscriptionsPerConnection) subscriptions"
                )
            )
            return
        }
        let options = resolved.options
        guard self.permissions.maySubscribe(channel, name: resolved.name, options: options) else {
            self.reply(id: id, error: .permissionDenied)
            return
        }
        // Registered first and holding pushes, so nothing published while history is read is lost.
        self.subscribeAttempts += 1
        let attempt = self.subscribeAttempts
        self.subscriptions[channel] = Subscription(options: options, attempt: attempt)
        let listening = self.hub.subscribe(self, to: channel)

        let wantsRecovery = params["recover"]?.boolValue == true && options.recovery
        let since: StreamPosition? =
            wantsRecovery
            ? StreamPosition(
                offset: params["offset"]?.unsignedValue ?? 0,
                epoch: params["epoch"]?.stringValue ?? ""
            ) : nil
        let eventLoop = self.hub.eventLoop
        let engine = self.relay.engine
        // The position is read once the node listens to the channel, so nothing published in
        // between is missed; what arrives meanwhile is held and deduplicated by offset.
        let page: EventLoopFuture<HistoryPage?> = listening.flatMap { _ in
            options.historySize > 0
                ? engine.history(
                    channel: channel,
                    since: since,
                    limit: since == nil ? 0 : nil,
                    reverse: false,
                    history: Relay.historyPolicy(options),
                    on: eventLoop
                ).map { Optional($0) }
                : eventLoop.makeSucceededFuture(nil)
        }
        page.whenComplete { [self] outcome in
            guard self.phase == .connected else { return }
            guard self.subscriptions[channel]?.attempt == attempt else {
                // Unsubscribed (and maybe subscribed again) while this one was being prepared.
                self.reply(
                    id: id,
                    error: RelayError.badRequest.with(
                        message: "bad request: unsubscribed before the subscribe completed"
                    )
                )
                return
            }
            let page: HistoryPage?
            switch outcome {
            case .success(let value): page = value
            case .failure(let error):
                self.dropSubscription(channel)
                self.reply(id: id, error: RelayError(engineFailure: error))
                return
            }
            var result: [String: WireJSON] = [:]
            var lastOffset: UInt64 = 0
            if let page {
                result["recoverable"] = .bool(options.recovery)
                result["positioned"] = .bool(true)
                result["epoch"] = .string(page.position.epoch)
                result["offset"] = .number(String(page.position.offset))
                lastOffset = page.position.offset
                if since != nil {
                    result["was_recovering"] = .bool(true)
                    result["recovered"] = .bool(page.complete)
                    if page.complete {
                        result["publications"] = .array(page.publications.map(\.wire))
                    }
                }
            }
            if options.presence {
                _ = self.relay.engine.addPresence(
                    channel: channel,
                    info: self.clientInfo(),
                    announce: options.joinLeave,
                    on: eventLoop
                )
            }
            self.reply(id: id, method: "subscribe", result: .object(result))
            self.subscriptions[channel]?.lastOffset = lastOffset
            self.subscriptions[channel]?.subscribed = true
            let held = self.subscriptions[channel]?.held ?? []
            self.subscriptions[channel]?.held = []
            for push in held {
                self.deliver(
                    channel: channel,
                    offset: push.offset,
                    frame: push.frame,
                    isPublication: push.isPublication
                )
            }
        }
    }

    /// The channel's name and namespace options, or `nil` after replying with why not.
    private func resolve(_ channel: String, replyingTo id: UInt64) -> (name: ChannelName, options: NamespaceOptions)? {
        switch self.relay.resolve(channel) {
        case .success(let resolved): return resolved
        case .failure(let error):
            self.reply(id: id, error: error)
            return nil
        }
    }

    private func unsubscribe(id: UInt64, params: WireJSON) {
        guard let channel = self.channelParameter(id: id, params: params, method: "unsubscribe") else { return }
        self.dropSubscription(channel)
        self.reply(id: id, method: "unsubscribe", result: .object([:]))
    }

    /// Forgets a subscription: no more pushes, out of presence (with a leave when configured).
    private func dropSubscription(_ channel: String) {
        guard let subscription = self.subscriptions.removeValue(forKey: channel) else { return }
        self.hub.unsubscribe(self, from: channel)
        if subscription.options.presence {
            _ = self.relay.engine.removePresence(
                channel: channel,
                info: self.clientInfo(),
                announce: subscription.options.joinLeave,
                on: self.hub.eventLoop
            )
        }
    }

    private func publish(id: UInt64, params: WireJSON) {
        guard let channel = params["channel"]?.stringValue, let data = params["data"] else {
            self.reply(
                id: id,
                error: RelayError.badRequest.with(message: "bad request: publish needs channel and data")
            )
            return
        }
        guard let resolved = self.resolve(channel, replyingTo: id) else { return }
        let subscribed = self.subscriptions[channel]?.subscribed == true
        guard
            self.permissions.mayPublish(channel, name: resolved.name, options: resolved.options, subscribed: subscribed)
        else {
            self.reply(id: id, error: .permissionDenied)
            return
        }
        self.relay.engine.publish(
            channel: channel,
            data: data,
            info: self.clientInfo(),
            tags: [:],
            history: Relay.historyPolicy(resolved.options),
            idempotencyKey: nil,
            idempotencyWindow: 0,
            on: self.hub.eventLoop
        ).whenComplete { [self] outcome in
            switch outcome {
            case .success: self.reply(id: id, method: "publish", result: .object([:]))
            case .failure(let error): self.reply(id: id, error: RelayError(engineFailure: error))
            }
        }
    }

    /// The command's `channel`; when it is missing or not a string, replies with a bad request
    /// naming `<method>.channel` and returns nil.
    private func channelParameter(id: UInt64, params: WireJSON, method: String) -> String? {
        guard let channel = params["channel"]?.stringValue else {
            self.reply(
                id: id,
                error: RelayError.badRequest.with(message: "bad request: \(method).channel must be a string")
            )
            return nil
        }
        return channel
    }

    /// Resolves a channel for reading (presence, history): the connection must be allowed to subscribe.
    private func readableChannel(id: UInt64, params: WireJSON, method: String) -> (String, NamespaceOptions)? {
        guard let channel = self.channelParameter(id: id, params: params, method: method) else { return nil }
        guard let resolved = self.resolve(channel, replyingTo: id) else { return nil }
        guard self.permissions.maySubscribe(channel, name: resolved.name, options: resolved.options) else {
            self.reply(id: id, error: .permissionDenied)
            return nil
        }
        return (channel, resolved.options)
    }

    private func presence(id: UInt64, params: WireJSON, stats: Bool) {
        let method = stats ? "presence_stats" : "presence"
        guard let (channel, options) = self.readableChannel(id: id, params: params, method: method) else { return }
        guard options.presence else {
            self.reply(
                id: id,
                error: RelayError.notAvailable.with(message: "not available: presence is off in this namespace")
            )
            return
        }
        self.relay.presence(channel: channel, stats: stats, on: self.hub.eventLoop).whenComplete { [self] outcome in
            switch outcome {
            case .success(let result):
                self.reply(id: id, method: method, result: result)
            case .failure(let error):
                self.logger.warning(
                    "relay presence lookup failed",
                    metadata: ["channel": "\(channel)", "error": "\(error)"]
                )
                self.reply(id: id, error: RelayError(engineFailure: error))
            }
        }
    }

    private func history(id: UInt64, params: WireJSON) {
        guard let (channel, options) = self.readableChannel(id: id, params: params, method: "history") else { return }
        guard options.historySize > 0 else {
            self.reply(
                id: id,
                error: RelayError.notAvailable.with(message: "not available: history is off in this namespace")
            )
            return
        }
        self.relay.history(params, channel: channel, options: options, on: self.hub.eventLoop).whenComplete {
            [self] outcome in
            switch outcome {
            case .success(.success(let result)): self.reply(id: id, method: "history", result: result)
            case .success(.failure(let error)): self.reply(id: id, error: error)
            case .failure(let error): self.reply(id: id, error: RelayError(engineFailure: error))
            }
        }
    }

    // MARK: Pushes and the outbound queue

    /// Called by the loop's hub for every event on a channel this connection subscribed to.
    func deliver(channel: String, offset: UInt64, frame: ByteBuffer, isPublication: Bool) {
        guard self.phase == .connected, var subscription = self.subscriptions[channel] else { return }
        guard subscription.subscribed else {
            self.subscriptions[channel]?.held.append((offset, frame, isPublication))
            return
        }
        if offset > 0 {
            guard offset > subscription.lastOffset else { return }  // Already sent in the subscribe reply.
            subscription.lastOffset = offset
            self.subscriptions[channel] = subscription
        }
        self.hub.counters.pushesOut += 1
        self.send(frame, publicationOf: isPublication ? channel : nil, options: subscription.options)
    }

    private func reply(id: UInt64, method: String, result: WireJSON) {
        guard id > 0 else { return }
        self.send(Push.frame(Push.reply(id: id, method: method, result: result)), publicationOf: nil, options: nil)
    }

    private func reply(id: UInt64, error: RelayError) {
        guard id > 0 else { return }
        self.send(Push.frame(Push.error(id: id, error)), publicationOf: nil, options: nil)
    }

    /// Writes a whole frame (``Push/frame(_:)``) at once while the socket keeps up; otherwise
    /// queues it, and applies the namespace's slow-consumer policy once the queue is over
    /// `maxQueuedBytes`.
    private func send(_ frame: ByteBuffer, publicationOf channel: String?, options: NamespaceOptions?) {
        guard self.phase != .closed, let context = self.context else { return }
        if self.queue.isEmpty && context.channel.isWritable {
            self.rawWriter.write(frame: frame)
            self.scheduleFlush()
            return
        }
        self.queue.append(Queued(frame: frame, channel: channel))
        self.queuedBytes += frame.readableBytes
        guard self.queuedBytes > self.configuration.maxQueuedBytes else { return }
        if options?.slowConsumer == .disconnect || channel == nil {
            self.hub.counters.slowDisconnects += 1
            self.disconnect(.slow)
        } else {
            self.dropOldestPublications()
        }
    }

    /// Drops queued publications, oldest first, until the queue is at half its limit. Every
    /// channel that loses one loses all its queued publications and gets an "insufficient
    /// state" unsubscribe: the client subscribes again and recovers from the last publication it
    /// really got, so nothing is skipped.
    private func dropOldestPublications() {
        var affected: Set<String> = []
        var remaining = self.queuedBytes
        let target = self.configuration.maxQueuedBytes / 2
        for entry in self.queue where remaining > target {
            guard let channel = entry.channel else { continue }
            affected.insert(channel)
            remaining -= entry.frame.readableBytes
        }
        var kept = Deque<Queued>()
        while let entry = self.queue.popFirst() {
            if let channel = entry.channel, affected.contains(channel) {
                self.queuedBytes -= entry.frame.readableBytes
                self.hub.counters.publicationsDropped += 1
            } else {
                kept.append(entry)
            }
        }
        self.queue = kept
        for channel in affected.sorted() where self.subscriptions[channel] != nil {
            self.dropSubscription(channel)
            let push = Push.frame(Push.unsubscribe(channel: channel, .insufficientState))
            self.queue.append(Queued(frame: push, channel: nil))
            self.queuedBytes += push.readableBytes
        }
        if self.queuedBytes > self.configuration.maxQueuedBytes {
            self.hub.counters.slowDisconnects += 1
            self.disconnect(.slow)
        }
    }

    private func drainQueue() {
        guard let context = self.context else { return }
        var wrote = false
        while context.channel.isWritable, let entry = self.queue.popFirst() {
            self.queuedBytes -= entry.frame.readableBytes
            self.rawWriter.write(frame: entry.frame)
            wrote = true
        }
        if wrote { self.rawWriter.flush() }
    }

    private func write(_ frame: WebSocketFrame) {
        self.context?.write(self.wrapOutboundOut(frame), promise: nil)
    }

    /// One flush per loop tick, however many pushes arrived in it; the hub runs the flushes of
    /// all its connections in one task.
    private func scheduleFlush() {
        guard !self.flushScheduled else { return }
        self.flushScheduled = true
        self.hub.requestFlush(self)
    }

    /// Called by the hub: sends what was written since the last flush.
    func performFlush() {
        self.flushScheduled = false
        self.rawWriter.flush()
    }

    // MARK: Pings, expiry and closing

    private func startPings() {
        let interval = TimeAmount.seconds(Int64(self.configuration.pingIntervalSeconds))
        let timeout = TimeAmount.seconds(Int64(self.configuration.pongTimeoutSeconds))
        self.pingTask = self.hub.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) {
            [weak self] _ in
            guard let self, self.phase == .connected else { return }
            let sentAt = NIODeadline.now()
            self.send(Push.ping, publicationOf: nil, options: nil)
            self.hub.eventLoop.scheduleTask(in: timeout) { [weak self] in
                guard let self, self.lastHeard < sentAt else { return }
                self.disconnect(.noPong)
            }
        }
    }

    /// Closes with a protocol disconnect code: the client reads code and reason from the close frame.
    func disconnect(_ reason: RelayDisconnect) {
        guard self.phase != .closed else { return }
        self.logger.debug(
            "relay client disconnected",
            metadata: ["client": "\(self.clientID)", "code": "\(reason.code)", "reason": "\(reason.reason)"]
        )
        self.closeWebSocket(code: WebSocketErrorCode(codeNumber: Int(reason.code)), reason: reason.reason)
    }

    /// Ends the subscription to `channel` from the server's side with an `unsubscribe` push:
    /// code 2000 by default; 2500 (insufficient state) makes the client subscribe again and recover.
    func unsubscribeByServer(_ channel: String, _ reason: RelayUnsubscribe = .server) {
        guard self.subscriptions[channel] != nil else { return }
        self.dropSubscription(channel)
        self.send(Push.frame(Push.unsubscribe(channel: channel, reason)), publicationOf: nil, options: nil)
    }

    /// The channels this connection is subscribed to.
    var subscribedChannels: [String] { Array(self.subscriptions.keys) }

    /// How long the socket stays open for the close frame to be written. A peer that stopped
    /// reading never takes it (the frame waits behind what it did not read), and would hold its
    /// socket until the gateway's idle timeout. A reader that is merely slow still gets the code.
    static let closeFrameTimeout = TimeAmount.seconds(1)

    /// Sends a close frame and closes the socket once it is written, or after
    /// ``closeFrameTimeout`` if it cannot be, or at once if writing fails.
    private func closeWebSocket(code: WebSocketErrorCode, reason: String) {
        guard self.phase != .closed, let context = self.context else { return }
        self.tearDown()
        self.queue.removeAll()
        self.queuedBytes = 0
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        // A close frame's payload is at most 125 bytes.
        data.writeString(String(decoding: reason.utf8.prefix(123), as: UTF8.self))
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
        let channel = context.channel
        self.countedAsClosing = true
        self.hub.counters.closingConnections += 1
        self.closeTimeoutTask = context.eventLoop.scheduleTask(in: Self.closeFrameTimeout) {
            channel.close(promise: nil)
        }
        context.writeAndFlush(self.wrapOutboundOut(frame)).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    /// Releases everything the connection holds; safe to call more than once.
    private func tearDown() {
        guard self.phase != .closed else { return }
        self.phase = .closed
        self.pingTask?.cancel()
        self.deadlineTask?.cancel()
        self.expiryTask?.cancel()
        for channel in Array(self.subscriptions.keys) { self.dropSubscription(channel) }
        self.hub.remove(self)
        if let user = self.admittedUser {
            self.relay.releaseConnection(of: user)
            self.admittedUser = nil
        }
    }
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
