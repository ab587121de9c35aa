import Logging
import NIOCore

/// One event loop's connection of a ``RedisClient``: connects, and reconnects with backoff when lost.
///
/// Its state lives in a `NIOLoopBoundBox`, touched only on its event loop.
final class ConnectionSlot: Sendable {
    private struct State {
        var connection: RedisConnection?
        var backoff: ReconnectBackoff
        var reconnectTask: Scheduled<Void>?
        var shutDown = false
    }

    let eventLoop: any EventLoop
    private let configuration: RedisClientConfiguration
    private let logger: Logger
    private let state: NIOLoopBoundBox<State>
    private let onStateChange: @Sendable (RedisConnection?) -> Void

    init(
        configuration: RedisClientConfiguration,
        eventLoop: any EventLoop,
        logger: Logger,
        onStateChange: @escaping @Sendable (RedisConnection?) -> Void
    ) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.onStateChange = onStateChange
        let backoff = ReconnectBackoff(
            minimum: configuration.reconnectMinBackoff,
            maximum: configuration.reconnectMaxBackoff
        )
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State(backoff: backoff), eventLoop: eventLoop)
    }

    func start() {
        self.eventLoop.execute { self.connect() }
    }

    func send(_ command: String, _ arguments: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        if self.eventLoop.inEventLoop {
            return self.sendOnLoop(command, arguments)
        }
        return self.eventLoop.flatSubmit { self.sendOnLoop(command, arguments) }
    }

    private func sendOnLoop(_ command: String, _ arguments: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        guard let connection = self.state.value.connection else {
            return self.eventLoop.makeFailedFuture(RedisClientError.unavailable)
        }
        return connection.send(command, arguments)
    }

    func shutdown() -> EventLoopFuture<Void> {
        self.eventLoop.flatSubmit {
            self.state.value.shutDown = true
            self.state.value.reconnectTask?.cancel()
            self.state.value.reconnectTask = nil
            guard let connection = self.state.value.connection else {
                return self.eventLoop.makeSucceededVoidFuture()
            }
            return connection.close()
        }
    }

    private func connect() {
        guard !self.state.value.shutDown else { return }
        RedisConnection.connect(self.configuration, on: self.eventLoop, logger: self.logger).whenComplete { result in
            switch result {
            case .success(let connection):
                guard !self.state.value.shutDown else {
                    connection.close().whenComplete { _ in }
                    return
                }
                self.state.value.connection = connection
                self.state.value.backoff.reset()
                self.logger.debug(
                    "Redis connected",
                    metadata: ["endpoint": "\(self.configuration.endpoint)", "version": "\(connection.serverVersion)"]
                )
                self.onStateChange(connection)
                connection.closeFuture.whenComplete { _ in
                    self.state.value.connection = nil
                    self.onStateChange(nil)
                    guard !self.state.value.shutDown else { return }
                    self.logger.warning(
                        "Redis connection lost",
                        metadata: ["endpoint": "\(self.configuration.endpoint)"]
                    )
                    self.scheduleReconnect()
                }
            case .failure(let error):
                guard !self.state.value.shutDown else { return }
                self.logger.warning(
                    "Redis connect failed",
                    metadata: ["endpoint": "\(self.configuration.endpoint)", "error": "\(error)"]
                )
                self.scheduleReconnect()
            }
        }
    }

    private func scheduleReconnect() {
        let delay = self.state.value.backoff.next()
        self.logger.warning(
            "Redis reconnecting",
            metadata: [
                "endpoint": "\(self.configuration.endpoint)",
                "attempt": "\(self.state.value.backoff.attempt)",
                "delay_ms": "\(delay.nanoseconds / 1_000_000)",
            ]
        )
        self.state.value.reconnectTask = self.eventLoop.scheduleTask(in: delay) { self.connect() }
    }
}
