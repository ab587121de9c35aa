import Logging
import NIOCore

/// Matches replies to the commands sent on one connection, first in first out.
///
/// Commands are written as they come and flushed once per event loop tick, so commands sent
/// without waiting go out together. A push frame is not a reply: it goes to `pushHandler`
/// (the subscriber's) or is dropped. A reply later than the command timeout fails every
/// waiting command and closes the connection, as the reply stream can no longer be trusted.
final class RedisCommandHandler: ChannelInboundHandler {
    typealias InboundIn = RESPValue
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        let promise: EventLoopPromise<RESPValue>
        let deadline: NIODeadline
    }

    private enum State {
        case idle
        case open(ChannelHandlerContext)
        case closed
    }

    private var state: State = .idle
    private var pending: CircularBuffer<Pending> = []
    private var flushScheduled = false
    private var timeoutTask: Scheduled<Void>?
    private let commandTimeout: TimeAmount
    private let logger: Logger

    /// Receives push frames; in RESP2 subscriber mode, every frame.
    var pushHandler: ((RESPValue) -> Void)?
    /// Error replies that answer no command of this handler (refused pub/sub commands, which
    /// are sent without a promise); logged when nobody takes them.
    var errorHandler: ((RedisServerError) -> Void)?
    /// Set on a RESP2 subscriber connection, whose messages arrive as ordinary arrays.
    var everyFrameIsPush = false

    init(commandTimeout: TimeAmount, logger: Logger) {
        self.commandTimeout = commandTimeout
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // The connect future completes before `channelActive` reaches this handler, and the
        // handshake writes from there, so the handler is open as soon as it is in the pipeline.
        if case .idle = self.state { self.state = .open(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.fail(RedisClientError.connectionClosed, context: context)
    }

    /// Writes a command; the reply completes `promise`, or nothing does when `promise` is nil.
    func send(_ command: String, _ arguments: [RESPArgument], promise: EventLoopPromise<RESPValue>?) {
        let context: ChannelHandlerContext
        switch self.state {
        case .open(let openContext):
            context = openContext
        case .idle:
            promise?.fail(RedisClientError.unavailable)
            return
        case .closed:
            promise?.fail(RedisClientError.connectionClosed)
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 16 + command.utf8.count)
        buffer.writeRESPCommand(command, arguments)
        if let promise {
            let entry = Pending(promise: promise, deadline: .now() + self.commandTimeout)
            self.pending.append(entry)
            if self.timeoutTask == nil { self.scheduleTimeout(at: entry.deadline, context: context) }
        }
        context.write(self.wrapOutboundOut(buffer), promise: nil)
        if !self.flushScheduled {
            self.flushScheduled = true
            context.eventLoop.assumeIsolated().execute {
                self.flushScheduled = false
                context.flush()
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = self.unwrapInboundIn(data)
        if case .push = value {
            self.pushHandler?(value)
            return
        }
        if self.everyFrameIsPush && self.pending.isEmpty {
            self.pushHandler?(value)
            return
        }
        guard let entry = self.pending.popFirst() else {
            if case .error(let error) = value {
                if let errorHandler = self.errorHandler {
                    errorHandler(error)
                } else {
                    self.logger.warning("Redis error reply without a command", metadata: ["error": "\(error.message)"])
                }
                return
            }
            self.fail(RedisClientError.protocolError("reply without a command"), context: context)
            return
        }
        if case .error(let error) = value {
            entry.promise.fail(error)
        } else {
            entry.promise.succeed(value)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.fail(RedisClientError.connectionClosed, context: context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let clientError: RedisClientError
        if let error = error as? RedisClientError {
            clientError = error
        } else if error is ByteToMessageDecoderError {
            clientError = .protocolError("\(error)")
        } else {
            self.logger.debug("Redis connection error", metadata: ["error": "\(error)"])
            clientError = .connectionClosed
        }
        self.fail(clientError, context: context)
    }

    private func scheduleTimeout(at deadline: NIODeadline, context: ChannelHandlerContext) {
        self.timeoutTask = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timeoutTask = nil
            guard let head = self.pending.first else { return }
            if head.deadline <= .now() {
                self.fail(RedisClientError.commandTimeout, context: context)
            } else {
                self.scheduleTimeout(at: head.deadline, context: context)
            }
        }
    }

    /// Fails every waiting command with `error` and closes the connection.
    private func fail(_ error: RedisClientError, context: ChannelHandlerContext) {
        if case .closed = self.state { return }
        self.state = .closed
        self.timeoutTask?.cancel()
        self.timeoutTask = nil
        let waiting = self.pending
        self.pending.removeAll()
        for entry in waiting { entry.promise.fail(error) }
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension RedisCommandHandler: Sendable {}
