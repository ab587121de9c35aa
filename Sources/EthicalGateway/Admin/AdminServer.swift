public import Logging
import NIOConcurrencyHelpers
public import NIOCore
import NIOHTTP1
import NIOPosix
public import ServiceLifecycle

/// The admin API's own listener (the top-level `"admin"` object), as a `Service`: bound at
/// start on the configured address and port, closed at shutdown. Its address and port are read
/// once; a reload that changes them is reported and takes effect at the next start.
public final class AdminServer: Service, Sendable {
    private let api: AdminAPI
    private let configuration: AdminConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let bound = NIOLockedValueBox<Result<SocketAddress, any Error>?>(nil)
    private let waiters = NIOLockedValueBox<[CheckedContinuation<SocketAddress, any Error>]>([])
    /// Open admin connections; past ``maxConnections`` new ones are closed at once.
    private let open = NIOLockedValueBox(0)
    static let maxConnections = 64

    public init(api: AdminAPI, configuration: AdminConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.api = api
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    /// The bound address, once listening; throws when binding failed.
    public func waitUntilListening() async throws -> SocketAddress {
        try await withCheckedThrowingContinuation { continuation in
            let ready = self.bound.withLockedValue { result -> Result<SocketAddress, any Error>? in
                if result == nil { self.waiters.withLockedValue { $0.append(continuation) } }
                return result
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    private func finish(_ result: Result<SocketAddress, any Error>) {
        let waiting = self.bound.withLockedValue { bound in
            bound = result
            return self.waiters.withLockedValue { waiters in
                defer { waiters.removeAll() }
                return waiters
            }
        }
        for waiter in waiting { waiter.resume(with: result) }
    }

    public func run() async throws {
        let api = self.api
        let bootstrap = ServerBootstrap(group: self.eventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [open] channel in
                let admitted = open.withLockedValue { count -> Bool in
                    guard count < Self.maxConnections else { return false }
                    count += 1
                    return true
                }
                guard admitted else { return channel.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
                channel.closeFuture.whenComplete { _ in open.withLockedValue { $0 -= 1 } }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                    try sync.addHandler(AdminHTTPHandler(api: api))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: self.configuration.address, port: self.configuration.port).get()
        } catch {
            let failure = ListenerStartError(
                listener: "admin",
                cause: "cannot listen on \(self.configuration.address):\(self.configuration.port): \(error)"
            )
            self.finish(.failure(failure))
            throw failure
        }
        let address = channel.localAddress!
        self.finish(.success(address))
        self.logger.notice(
            "admin API listening",
            metadata: [
                "address": "\(address)",
                "token-file": "\(self.api.server.runtime.adminAccess?.tokenPath ?? "-")",
            ]
        )
        try? await gracefulShutdown()
        try? await channel.close()
    }
}
