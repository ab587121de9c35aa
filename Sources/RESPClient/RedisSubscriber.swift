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
    private struct State {
        var wanted: Set<String> = []
        var confirmed: Set<String> = []
        var pendingSubscribe: [String: [EventLoopPromise<Void>]] = [:]
        var pendingUnsubscribe: [String: [EventLoopPromise<Void>]] = [:]
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
            var toSend: [String] = []
            for channel in channels {
                self.state.value.wanted.insert(channel)
                guard self.state.value.connection != nil, !self.state.value.confirmed.contains(channel) else {
                    continue
                }
                let promise = self.eventLoop.makePromise(of: Void.self)
                if self.state.value.pendingSubscribe[channel] == nil { toSend.append(channel) }
                self.state.value.pendingSubscribe[channel, default: []].append(promise)
                futures.append(promise.futureResult)
            }
            self.sendSubscriptions(toSend, subscribe: true)
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
                guard self.state.value.connection != nil else { continue }
                let promise = self.eventLoop.makePromise(of: Void.self)
                self.state.value.pendingUnsubscribe[channel, default: []].append(promise)
                futures.append(promise.futureResult)
            }
            self.sendSubscriptions(channels, subscribe: false)
            self.tellSubscribedIfComplete()
            return .andAllSucceed(futures, on: self.eventLoop)
        }
    }

    /// Closes the connection and stops reconnecting. Idempotent.
    public func shutdown() -> EventLoopFuture<Void> {
        self.eventLoop.flatSubmit {
            self.state.value.shutDown = true
            self.state.value.reconnectTask?.cancel()
            self.state.value.reconnectTask = nil
            return self.state.value.connection?.close() ?? self.eventLoop.makeSucceededVoidFuture()
        }
    }

    private func sendSubscriptions(_ channels: [String], subscribe: Bool) {
        guard let connection = self.state.value.connection, !channels.isEmpty else { return }
        let handler = connection.handler.value
        if self.usesShardedPubSub {
            // One channel per command: the channels of one SSUBSCRIBE must share a cluster slot.
            for channel in channels {
                handler.send(subscribe ? "SSUBSCRIBE" : "SUNSUBSCRIBE", [RESPArgument(channel)], promise: nil)
            }
        } else {
            handler.send(subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE", channels.map { RESPArgument($0) }, promise: nil)
        }
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
        let major = Int(connection.serverVersion.prefix { $0 != "." }) ?? 0
        self.publicState.withLockedValue { state in
            state.connected = true
            if state.sharded == nil { state.sharded = major >= 7 }
        }
        let handler = connection.handler.value
        handler.everyFrameIsPush = connection.protocolVersion == 2
        handler.pushHandler = { value in self.received(value) }
        self.state.value.connection = connection
        self.state.value.backoff.reset()
        self.state.value.confirmed = []
        self.state.value.awaitingResubscribe = self.state.value.wanted
        self.sendSubscriptions(Array(self.state.value.wanted), subscribe: true)
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
        let waiting =
            Array(self.state.value.pendingSubscribe.values.joined())
            + Array(self.state.value.pendingUnsubscribe.values.joined())
        self.state.value.pendingSubscribe = [:]
        self.state.value.pendingUnsubscribe = [:]
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
            let promises = self.state.value.pendingSubscribe.removeValue(forKey: channel) ?? []
            for promise in promises { promise.succeed() }
            self.state.value.awaitingResubscribe?.remove(channel)
            self.tellSubscribedIfComplete()
        case "unsubscribe", "sunsubscribe":
            guard elements.count >= 2, let channel = elements[1].string else { return }
            self.state.value.confirmed.remove(channel)
            let promises = self.state.value.pendingUnsubscribe.removeValue(forKey: channel) ?? []
            for promise in promises { promise.succeed() }
        default:
            break
        }
    }
}
