public import Logging
import NIOConcurrencyHelpers
public import NIOCore

/// A dedicated pub/sub connection that reconnects and subscribes again by itself.
///
/// The handler is called on the subscriber's event loop, messages in the order received.
///
/// ```swift
/// let subscriber = RedisSubscriber(configuration: configuration, eventLoop: loop, sharded: nil, logger: logger) { event in
///     if case .message(let channel, let payload) = event { deliver(channel, payload) }
/// }
/// subscriber.start()
/// _ = subscriber.subscribe(["room:1"])
/// ```
public final class RedisSubscriber: Sendable {
    /// A (un)subscribe command sent for one channel and not yet confirmed by the server.
    private struct InFlight {
        let subscribe: Bool
        let channel: String
        var promises: [EventLoopPromise<Void>]
    }

    private struct State {
        var wanted: Set<String> = []
        var confirmed: Set<String> = []
        /// Per channel, the last command sent on this connection: `true` for a subscribe. A
        /// subscribe is sent again after an unsubscribe even while that one is unconfirmed.
        var intent: [String: Bool] = [:]
        /// Commands awaiting their confirmation, in the order sent (the server answers in order;
        /// an error reply belongs to the oldest).
        var inFlight = CircularBuffer<InFlight>()
        var connection: RedisConnection?
        /// The channels still to be confirmed before `.subscribed` is told; nil once told.
        var awaitingResubscribe: Set<String>?
        var lostBefore = false
        var started = false
        var shutDown = false
        var backoff: ReconnectBackoff
        var reconnectTask: Scheduled<Void>?
    }

    private struct PublicState {
        var connected = false
        var sharded: Bool?
    }

    private let configuration: RedisClientConfiguration
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let handler: @Sendable (RedisSubscriberEvent) -> Void
    private let state: NIOLoopBoundBox<State>
    private let publicState: NIOLockedValueBox<PublicState>

    /// A subscriber; `sharded` nil uses `SSUBSCRIBE` when the server has sharded pub/sub (Redis 7 and later).
    public init(
        configuration: RedisClientConfiguration,
        eventLoop: any EventLoop,
        sharded: Bool?,
        logger: Logger,
        handler: @escaping @Sendable (RedisSubscriberEvent) -> Void
    ) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.handler = handler
        let backoff = ReconnectBackoff(
            minimum: configuration.reconnectMinBackoff,
            maximum: configuration.reconnectMaxBackoff
        )
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State(backoff: backoff), eventLoop: eventLoop)
        self.publicState = NIOLockedValueBox(PublicState(sharded: sharded))
    }

    /// Begins connecting and returns at once.
    public func start() {
        self.eventLoop.execute {
            guard !self.state.value.started, !self.state.value.shutDown else { return }
            self.state.value.started = true
            self.connect()
        }
    }

    /// Whether `SSUBSCRIBE` is used; decided on the first connect unless forced.
    public var usesShardedPubSub: Bool {
        self.publicState.withLockedValue { $0.sharded ?? false }
    }

    /// Whether the connection is up.
    public var isConnected: Bool {
        self.publicState.withLockedValue { $0.connected }
    }

    /// Adds channels to the wanted set and subscribes them; idempotent.
    ///
    /// Succeeds once the server confirmed every channel, or at once while disconnected (they are
    /// subscribed on reconnect).
    public func subscribe(_ channels: [String]) -> EventLoopFuture<Void> {
        self.eventLoop.flatSubmit {
            var futures: [EventLoopFuture<Void>] = []
            for channel in channels {
                self.state.value.wanted.insert(channel)
                guard self.state.value.connection != nil else { continue }
                if self.state.value.intent[channel] == true {
                    // Subscribed, or a subscribe on its way: wait for that one if it is unconfirmed.
                    if let last = self.state.value.inFlight.lastIndex(where: { $0.channel == channel }),
                        self.state.value.inFlight[last].subscribe
                    {
                        let promise = self.eventLoop.makePromise(of: Void.self)
                        self.state.value.inFlight[last].promises.append(promise)
                        futures.append(promise.futureResult)
                    }
                    continue
                }
                let promise = self.eventLoop.makePromise(of: Void.self)
                self.send(channel, subscribe: true, promises: [promise])
                futures.append(promise.futureResult)
            }
            return .andAllSucceed(futures, on: self.eventLoop)
        }
    }

    /// Removes channels from the wanted set and unsubscribes them; succeeds once the server confirmed.
    public func unsubscribe(_ channels: [String]) -> EventLoopFuture<Void> {
        self.eventLoop.flatSubmit {
            var futures: [EventLoopFuture<Void>] = []
            for channel in channels {
                self.state.value.wanted.remove(channel)
                self.state.value.awaitingResubscribe?.remove(channel)
                guard self.state.value.connection != nil, self.state.value.intent[channel] == true else { continue }
                let promise = self.eventLoop.makePromise(of: Void.self)
                self.send(channel, subscribe: false, promises: [promise])
                futures.append(promise.futureResult)
            }
            self.tellSubscribedIfComplete()
            return .andAllSucceed(futures, on: self.eventLoop)
        }
    }

    public func shutdown() -> EventLoopFuture<Void> {
        self.eventLoop.flatSubmit {
            self.state.value.shutDown = true
            self.state.value.reconnectTask?.cancel()
            self.state.value.reconnectTask = nil
            return self.state.value.connection?.close() ?? self.eventLoop.makeSucceededVoidFuture()
        }
    }

    /// Sends one (un)subscribe command for `channel` and records it as awaiting confirmation.
    /// One channel per command: the channels of one SSUBSCRIBE must share a cluster slot, and
    /// an error reply then names exactly one command.
    private func send(_ channel: String, subscribe: Bool, promises: [EventLoopPromise<Void>]) {
        guard let connection = self.state.value.connection else { return }
        let command: String
        if self.usesShardedPubSub {
            command = subscribe ? "SSUBSCRIBE" : "SUNSUBSCRIBE"
        } else {
            command = subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE"
        }
        self.state.value.intent[channel] = subscribe
        self.state.value.inFlight.append(InFlight(subscribe: subscribe, channel: channel, promises: promises))
        connection.handler.value.send(command, [RESPArgument(channel)], promise: nil)
    }

    private func connect() {
        guard !self.state.value.shutDown else { return }
        RedisConnection.connect(self.configuration, on: self.eventLoop, logger: self.logger).whenComplete { result in
            switch result {
            case .success(let connection):
                self.connected(connection)
            case .failure(let error):
                guard !self.state.value.shutDown else { return }
                self.logger.warning(
                    "Redis subscriber connect failed",
                    metadata: ["endpoint": "\(self.configuration.endpoint)", "error": "\(error)"]
                )
                self.scheduleReconnect()
            }
        }
    }

    private func connected(_ connection: RedisConnection) {
        guard !self.state.value.shutDown else {
            connection.close().whenComplete { _ in }
            return
        }
        let sharded = RedisServerFeatures.hasShardedPubSub(version: connection.serverVersion)
        self.publicState.withLockedValue { state in
            state.connected = true
            if state.sharded == nil { state.sharded = sharded }
        }
        let handler = connection.handler.value
        handler.everyFrameIsPush = connection.protocolVersion == 2
        handler.pushHandler = { value in self.received(value) }
        handler.errorHandler = { error in self.refused(error) }
        self.state.value.connection = connection
        self.state.value.backoff.reset()
        self.state.value.confirmed = []
        self.state.value.intent = [:]
        self.state.value.inFlight = []
        self.state.value.awaitingResubscribe = self.state.value.wanted
        for channel in self.state.value.wanted { self.send(channel, subscribe: true, promises: []) }
        self.tellSubscribedIfComplete()
        connection.closeFuture.whenComplete { _ in self.lost() }
    }

    private func lost() {
        self.publicState.withLockedValue { $0.connected = false }
        self.state.value.connection = nil
        self.state.value.confirmed = []
        self.state.value.awaitingResubscribe = nil
        self.state.value.lostBefore = true
        // The channels stay wanted and are subscribed on reconnect, so their callers are done.
        let waiting = self.state.value.inFlight.flatMap(\.promises)
        self.state.value.inFlight = []
        self.state.value.intent = [:]
        for promise in waiting { promise.succeed() }
        self.handler(.disconnected)
        guard !self.state.value.shutDown else { return }
        self.scheduleReconnect()
    }

    private func scheduleReconnect() {
        let delay = self.state.value.backoff.next()
        self.logger.warning(
            "Redis subscriber reconnecting",
            metadata: [
                "endpoint": "\(self.configuration.endpoint)",
                "attempt": "\(self.state.value.backoff.attempt)",
                "delay_ms": "\(delay.nanoseconds / 1_000_000)",
            ]
        )
        self.state.value.reconnectTask = self.eventLoop.scheduleTask(in: delay) { self.connect() }
    }

    private func tellSubscribedIfComplete() {
        guard let awaiting = self.state.value.awaitingResubscribe, awaiting.isEmpty else { return }
        self.state.value.awaitingResubscribe = nil
        self.handler(.subscribed(afterLoss: self.state.value.lostBefore))
    }

    private func received(_ value: RESPValue) {
        if case .error(let error) = value {
            // RESP2: every frame comes here, errors included.
            self.refused(error)
            return
        }
        guard let elements = value.array, let kind = elements.first?.string?.lowercased() else {
            self.logger.debug("Redis subscriber ignored a frame", metadata: ["frame": "\(value)"])
            return
        }
        switch kind {
        case "message", "smessage":
            guard elements.count == 3, let channel = elements[1].string, let payload = elements[2].buffer else {
                return
            }
            self.handler(.message(channel: channel, payload: payload))
        case "subscribe", "ssubscribe":
            guard elements.count >= 2, let channel = elements[1].string else { return }
            self.state.value.confirmed.insert(channel)
            self.confirm(channel, subscribe: true)
            self.state.value.awaitingResubscribe?.remove(channel)
            self.tellSubscribedIfComplete()
        case "unsubscribe", "sunsubscribe":
            guard elements.count >= 2, let channel = elements[1].string else { return }
            self.state.value.confirmed.remove(channel)
            self.confirm(channel, subscribe: false)
        default:
            break
        }
    }

    /// Completes the oldest unconfirmed command of that kind for `channel`.
    private func confirm(_ channel: String, subscribe: Bool) {
        guard
            let index = self.state.value.inFlight.firstIndex(where: {
                $0.channel == channel && $0.subscribe == subscribe
            })
        else { return }
        let entry = self.state.value.inFlight.remove(at: index)
        for promise in entry.promises { promise.succeed() }
    }

    /// The server refused the oldest unconfirmed command (an ACL without the channel, say): its
    /// callers fail with the server's error; a refused channel stays wanted and is tried again
    /// on the next connection, and does not hold back `.subscribed`.
    private func refused(_ error: RedisServerError) {
        guard let entry = self.state.value.inFlight.popFirst() else {
            self.logger.warning("Redis subscriber error", metadata: ["error": "\(error.message)"])
            return
        }
        self.logger.error(
            "Redis refused a subscription command",
            metadata: [
                "endpoint": "\(self.configuration.endpoint)", "channel": "\(entry.channel)",
                "subscribe": "\(entry.subscribe)", "error": "\(error.message)",
            ]
        )
        if entry.subscribe, self.state.value.intent[entry.channel] == true,
            !self.state.value.inFlight.contains(where: { $0.channel == entry.channel })
        {
            self.state.value.intent[entry.channel] = nil
        }
        for promise in entry.promises { promise.fail(error) }
        self.state.value.awaitingResubscribe?.remove(entry.channel)
        self.tellSubscribedIfComplete()
    }
}
