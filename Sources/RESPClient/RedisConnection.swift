public import Logging
public import NIOCore
import NIOPosix
import NIOSSL

/// One connection to Redis, on one event loop.
///
/// The handshake sends `HELLO 3 [AUTH user pass]`; when the server does not know `HELLO` or
/// refuses protocol 3 it falls back to RESP2 (`AUTH [user] pass`), then sends `SELECT db` when
/// the database is not 0. Connecting and the handshake together are bounded by the connect timeout.
public final class RedisConnection: Sendable {
    /// The event loop the connection lives on; every future it returns completes there.
    public let eventLoop: any EventLoop
    /// The protocol spoken: 3 or 2.
    public let protocolVersion: Int
    /// The server's version, from `HELLO`'s `version` or `INFO server` in RESP2.
    public let serverVersion: String

    let channel: any Channel
    let handler: NIOLoopBound<RedisCommandHandler>

    init(channel: any Channel, handler: NIOLoopBound<RedisCommandHandler>, protocolVersion: Int, serverVersion: String)
    {
        self.eventLoop = channel.eventLoop
        self.channel = channel
        self.handler = handler
        self.protocolVersion = protocolVersion
        self.serverVersion = serverVersion
    }

    /// Connects, runs the handshake, and succeeds with a connection ready for commands.
    public static func connect(
        _ configuration: RedisClientConfiguration,
        on eventLoop: any EventLoop,
        logger: Logger
    ) -> EventLoopFuture<RedisConnection> {
        let promise = eventLoop.makePromise(of: RedisConnection.self)
        let endpoint = configuration.endpoint
        let sslContext: NIOSSLContext?
        if endpoint.useTLS {
            do {
                sslContext = try NIOSSLContext(configuration: configuration.tls ?? .makeClientConfiguration())
            } catch {
                return eventLoop.makeFailedFuture(error)
            }
        } else {
            sslContext = nil
        }
        let timeout = eventLoop.scheduleTask(in: configuration.connectTimeout) {
            promise.fail(RedisClientError.connectTimeout)
        }
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                do {
                    let sync = channel.pipeline.syncOperations
                    if let sslContext {
                        let hostname = configuration.serverName ?? (endpoint.host.isIPAddress ? nil : endpoint.host)
                        try sync.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: hostname))
                    }
                    let decoder = RESPDecoder(
                        maxBulkLength: configuration.maxBulkLength,
                        maxDepth: configuration.maxNestingDepth
                    )
                    try sync.addHandler(ByteToMessageHandler(decoder))
                    try sync.addHandler(
                        RedisCommandHandler(commandTimeout: configuration.commandTimeout, logger: logger)
                    )
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        bootstrap.connect(host: endpoint.host, port: endpoint.port).whenComplete { result in
            switch result {
            case .failure(let error):
                promise.fail(error)
            case .success(let channel):
                do {
                    let handler = try channel.pipeline.syncOperations.handler(type: RedisCommandHandler.self)
                    let bound = NIOLoopBound(handler, eventLoop: eventLoop)
                    Handshake(configuration: configuration, channel: channel, handler: bound).run().cascade(to: promise)
                } catch {
                    promise.fail(error)
                }
                // Whoever lost the race (timeout or a failed handshake) must not leave the socket open.
                promise.futureResult.whenFailure { _ in channel.close(promise: nil) }
            }
        }
        promise.futureResult.whenComplete { _ in timeout.cancel() }
        return promise.futureResult
    }

    /// Sends one command and succeeds with its reply.
    ///
    /// Commands sent without waiting are pipelined: written and flushed together, replies matched in
    /// order. A top-level error reply fails the future with ``RedisServerError``. Without a reply
    /// within the command timeout it fails with ``RedisClientError/commandTimeout`` and the
    /// connection closes, as the reply stream is no longer in step. Completes on ``eventLoop``.
    public func send(_ command: String, _ arguments: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        let promise = self.eventLoop.makePromise(of: RESPValue.self)
        if self.eventLoop.inEventLoop {
            self.handler.value.send(command, arguments, promise: promise)
        } else {
            self.eventLoop.execute {
                self.handler.value.send(command, arguments, promise: promise)
            }
        }
        return promise.futureResult
    }

    /// Completes when the connection has closed, for whatever reason.
    public var closeFuture: EventLoopFuture<Void> {
        self.channel.closeFuture
    }

    /// Closes the connection; commands still waiting fail with ``RedisClientError/connectionClosed``.
    public func close() -> EventLoopFuture<Void> {
        self.channel.close(promise: nil)
        return self.channel.closeFuture
    }
}

extension String {
    fileprivate var isIPAddress: Bool {
        (try? SocketAddress(ipAddress: self, port: 0)) != nil
    }
}
