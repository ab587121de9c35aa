public import Logging
import NIOConcurrencyHelpers
public import NIOCore

/// A pool with one connection per event loop of a group, each reconnecting forever with backoff.
///
/// Commands use the caller's event loop's own connection, so they stay on that loop, and fail fast
/// with ``RedisClientError/unavailable`` while it is down rather than queueing.
///
/// ```swift
/// let client = RedisClient(configuration: configuration, eventLoopGroup: group, logger: logger)
/// client.start()
/// let reply = client.send("INCR", ["hits"], on: context.eventLoop)
/// ```
public final class RedisClient: Sendable {
    private let slots: [ConnectionSlot]
    private let slotIndex: [ObjectIdentifier: Int]
    private let shared: NIOLockedValueBox<SharedState>
    private let eventLoopGroup: any EventLoopGroup

    private struct SharedState {
        var up: [Bool]
        var serverVersion: String?
        var started = false
        var shuttingDown = false
        var waiters: [EventLoopPromise<Void>] = []
    }

    /// A client for `configuration` with one connection per loop of `eventLoopGroup`; call ``start()``.
    public init(configuration: RedisClientConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.eventLoopGroup = eventLoopGroup
        let eventLoops = Array(eventLoopGroup.makeIterator())
        let shared = NIOLockedValueBox(SharedState(up: Array(repeating: false, count: eventLoops.count)))
        var index: [ObjectIdentifier: Int] = [:]
        for (position, eventLoop) in eventLoops.enumerated() { index[ObjectIdentifier(eventLoop)] = position }
        self.slots = eventLoops.enumerated().map { position, eventLoop in
            ConnectionSlot(configuration: configuration, eventLoop: eventLoop, logger: logger) { connection in
                Self.slotChanged(position, connection, shared: shared)
            }
        }
        self.slotIndex = index
        self.shared = shared
    }

    /// Begins connecting every loop's connection and returns at once.
    public func start() {
        let first = self.shared.withLockedValue { state -> Bool in
            defer { state.started = true }
            return !state.started && !state.shuttingDown
        }
        guard first else { return }
        for slot in self.slots { slot.start() }
    }

    /// Sends a command on `eventLoop`'s own connection (any connection when `eventLoop` is not in the group).
    ///
    /// While that connection is down, another loop's connection that is up carries the command;
    /// with none up, fails at once with ``RedisClientError/unavailable`` (nothing is queued).
    /// Completes on `eventLoop`.
    public func send(
        _ command: String,
        _ arguments: [RESPArgument],
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<RESPValue> {
        if let index = self.slotIndex[ObjectIdentifier(eventLoop)] {
            return self.slots[index].send(command, arguments).flatMapError { error in
                // This loop's connection is down (reconnecting after a loss, say) while another
                // loop's may be up again already: use that one rather than fail. The lock is
                // taken only on this path.
                guard error as? RedisClientError == .unavailable,
                    let other = self.shared.withLockedValue({ state in
                        state.up.indices.first { $0 != index && state.up[$0] }
                    })
                else { return eventLoop.makeFailedFuture(error) }
                return self.slots[other].send(command, arguments).hop(to: eventLoop)
            }
        }
        let up = self.shared.withLockedValue { $0.up }
        let slot = up.firstIndex(of: true).map { self.slots[$0] } ?? self.slots[0]
        return slot.send(command, arguments).hop(to: eventLoop)
    }

    /// Runs `script` with `EVALSHA`; on `NOSCRIPT`, once with `EVAL` and the source (which also loads it).
    public func evalSHA(
        _ script: RedisScript,
        keys: [RESPArgument],
        arguments: [RESPArgument],
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<RESPValue> {
        let tail = [RESPArgument(keys.count)] + keys + arguments
        return self.send("EVALSHA", [RESPArgument(script.sha1)] + tail, on: eventLoop).flatMapError { error in
            guard let serverError = error as? RedisServerError, serverError.code == "NOSCRIPT" else {
                return eventLoop.makeFailedFuture(error)
            }
            return self.send("EVAL", [RESPArgument(script.source)] + tail, on: eventLoop)
        }
    }

    /// Whether at least one loop's connection is up.
    public var isConnected: Bool {
        self.shared.withLockedValue { $0.up.contains(true) }
    }

    /// The server's version, from the first connection that came up.
    public var serverVersion: String? {
        self.shared.withLockedValue { $0.serverVersion }
    }

    /// Succeeds once every loop's connection is up, or fails with ``RedisClientError/connectTimeout`` after `timeout`.
    public func waitUntilConnected(timeout: TimeAmount) -> EventLoopFuture<Void> {
        let promise = self.eventLoopGroup.any().makePromise(of: Void.self)
        let ready = self.shared.withLockedValue { state -> Bool in
            if !state.up.contains(false) { return true }
            state.waiters.append(promise)
            return false
        }
        if ready {
            promise.succeed()
            return promise.futureResult
        }
        let timer = promise.futureResult.eventLoop.scheduleTask(in: timeout) {
            promise.fail(RedisClientError.connectTimeout)
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        return promise.futureResult
    }

    /// Closes every connection and stops reconnecting; waiting commands fail. Idempotent.
    public func shutdown() -> EventLoopFuture<Void> {
        let waiters = self.shared.withLockedValue { state in
            state.shuttingDown = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.fail(RedisClientError.shutdown) }
        let closed = self.slots.map { $0.shutdown() }
        return EventLoopFuture.andAllComplete(closed, on: self.eventLoopGroup.any())
    }

    private static func slotChanged(
        _ index: Int,
        _ connection: RedisConnection?,
        shared: NIOLockedValueBox<SharedState>
    ) {
        let ready = shared.withLockedValue { state -> [EventLoopPromise<Void>] in
            state.up[index] = connection != nil
            if let connection, state.serverVersion == nil { state.serverVersion = connection.serverVersion }
            guard !state.up.contains(false) else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in ready { waiter.succeed() }
    }
}
