public import Logging
import NIOConcurrencyHelpers
public import NIOCore
import NIOPosix
import NIOSSL
public import ServiceLifecycle

/// The gateway's listeners as a `Service`: binds every listener, serves until graceful shutdown,
/// then stops accepting, lets in-flight requests finish within the grace period and closes.
///
/// ```swift
/// let server = GatewayServer(runtime: runtime, eventLoopGroup: group, logger: logger)
/// let group = ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
/// try await group.run()
/// ```
public final class GatewayServer: Service, Sendable {
    public let runtime: GatewayRuntime
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    private struct State {
        var boundAddresses: [String: SocketAddress]?
        var startFailure: (any Error)?
        /// Callers of ``waitUntilListening()`` that came before the listeners were bound.
        var listeningWaiters: [CheckedContinuation<[String: SocketAddress], any Error>] = []
        /// Every accepted connection still open: what a shutdown asks to finish, then closes.
        var connections: [ObjectIdentifier: any Channel] = [:]
        /// The most connections open at once since ``takeConnectionPeak()`` last asked.
        var connectionPeak = 0
        /// Connections closed at once because `limits.maxConnections` were open.
        var refusedConnections = 0
        /// The shutdown has begun: connections still arriving are closed at once.
        var draining = false
        /// Completed when the last connection closes during the shutdown.
        var drained: EventLoopPromise<Void>?
    }

    public init(runtime: GatewayRuntime, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.runtime = runtime
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    /// The local address of each listener, by listener name, once all are bound. Throws the
    /// start-up error when binding failed.
    public func waitUntilListening() async throws -> [String: SocketAddress] {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<[String: SocketAddress], any Error>? = self.state.withLockedValue { state in
                if let addresses = state.boundAddresses { return .success(addresses) }
                if let failure = state.startFailure { return .failure(failure) }
                state.listeningWaiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    /// Re-reads the certificate files of every HTTPS listener (what SIGHUP does). New handshakes
    /// use the new certificates; open connections are not touched. A listener whose files fail
    /// keeps its current certificates.
    public func reloadCertificates() throws {
        var issues: [ConfigIssue] = []
        for (_, store) in self.runtime.certificateStores.sorted(by: { $0.key < $1.key }) {
            do {
                try store.reload()
                self.logger.notice(
                    "reloaded certificates",
                    metadata: [
                        "listener": "\(store.listenerName)",
                        "fingerprints": "\(store.certificates.map(\.fingerprint).joined(separator: ", "))",
                    ]
                )
            } catch let error as ConfigValidationError {
                issues += error.issues
            }
        }
        if !issues.isEmpty { throw ConfigValidationError(issues) }
    }

    public func run() async throws {
        let serverChannels: [any Channel]
        do {
            serverChannels = try await self.bindListeners()
        } catch {
            self.finishStart(.failure(error))
            throw error
        }
        var addresses: [String: SocketAddress] = [:]
        for (listener, channel) in zip(self.runtime.configuration.listeners, serverChannels) {
            addresses[listener.name] = channel.localAddress
            self.logger.notice(
                "listening",
                metadata: [
                    "listener": "\(listener.name)",
                    "address": "\(channel.localAddress.map { "\($0)" } ?? "?")",
                    "kind":
                        "\(listener.tls != nil ? "https" : listener.redirectToHTTPS != nil ? "redirect-to-https" : "http")",
                ]
            )
        }
        self.finishStart(.success(addresses))

        try? await gracefulShutdown()
        await self.drain(serverChannels: serverChannels)
    }

    private func finishStart(_ result: Result<[String: SocketAddress], any Error>) {
        let waiters = self.state.withLockedValue { state in
            switch result {
            case .success(let addresses): state.boundAddresses = addresses
            case .failure(let error): state.startFailure = error
            }
            defer { state.listeningWaiters.removeAll() }
            return state.listeningWaiters
        }
        for waiter in waiters { waiter.resume(with: result) }
    }

    private func bindListeners() async throws -> [any Channel] {
        var channels: [any Channel] = []
        do {
            for listener in self.runtime.configuration.listeners {
                channels.append(try await self.bind(listener))
            }
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
        return channels
    }

    private func bind(_ listener: ListenerConfiguration) async throws -> any Channel {
        let kind: ListenerPipeline.Kind
        if let tls = listener.tls, let store = self.runtime.certificateStores[listener.index] {
            do {
                kind = .tls(
                    try NIOSSLContext(
                        configuration: store.makeTLSConfiguration(minimumVersion: tls.minimumVersion, http2: tls.http2)
                    ),
                    hsts: tls.hsts?.headerValue
                )
            } catch {
                throw ListenerStartError(listener: listener.name, cause: "TLS set-up failed: \(error)")
            }
        } else if let redirect = listener.redirectToHTTPS {
            kind = .redirectToHTTPS(port: redirect.port)
        } else {
            kind = .plain
        }
        let pipeline = ListenerPipeline(kind: kind, runtime: self.runtime, logger: self.logger)
        let bootstrap = ServerBootstrap(group: self.eventLoopGroup)
            // The kernel caps it at net.core.somaxconn (4096 on current kernels): a burst of
            // reconnecting clients (1,500 slowloris connections cut at once) otherwise overflows
            // the accept queue and a normal client's SYN waits a 1 s retransmit.
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // A client may send its requests and then shut its sending side (`nc`, some
            // load balancers' health checks): every request it sent is still answered.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            // NIO keeps each connection's last receive buffer for its lifetime and never shrinks
            // it; starting at 1 KiB (nginx's default header buffer) instead of NIO's 2 KiB saves
            // 1 KiB per idle connection. Bigger reads double it as they come.
            .childChannelOption(.recvAllocator, value: ListenerPipeline.receiveBuffers)
            .childChannelInitializer { [self] channel in
                guard self.track(channel) else {
                    // Past limits.maxConnections: failing the initializer closes the connection.
                    return channel.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
                }
                return channel.eventLoop.makeCompletedFuture {
                    try pipeline.configure(channel)
                }
            }
        do {
            return try await bootstrap.bind(host: listener.address, port: listener.port).get()
        } catch let error as IOError {
            let reason = error.errnoCode == EADDRINUSE ? "port \(listener.port) is already in use" : "\(error)"
            throw ListenerStartError(
                listener: listener.name,
                cause: "cannot listen on \(listener.address):\(listener.port): \(reason)"
            )
        } catch {
            throw ListenerStartError(
                listener: listener.name,
                cause: "cannot listen on \(listener.address):\(listener.port): \(error)"
            )
        }
    }

    /// How many client connections are open, and the most that were open at once since the
    /// previous call (the peak then restarts from the current count).
    public func takeConnectionPeak() -> (peak: Int, open: Int) {
        self.state.withLockedValue { state in
            let result = (state.connectionPeak, state.connections.count)
            state.connectionPeak = state.connections.count
            return result
        }
    }

    /// Connections closed at once because `limits.maxConnections` were already open.
    public var refusedConnections: Int { self.state.withLockedValue { $0.refusedConnections } }

    /// Records an accepted connection until it closes (one lock, no event loop hop); the
    /// shutdown asks each recorded connection to finish and closes what is left. A connection
    /// past `limits.maxConnections` is closed at once.
    private func track(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let maxConnections = self.runtime.limits.maxConnections
        let (draining, overLimit) = self.state.withLockedValue { state -> (Bool, Bool) in
            guard state.connections.count < maxConnections else {
                state.refusedConnections += 1
                return (state.draining, true)
            }
            state.connections[id] = channel
            state.connectionPeak = max(state.connectionPeak, state.connections.count)
            return (state.draining, false)
        }
        if overLimit { return false }
        channel.closeFuture.whenComplete { _ in
            let drained = self.state.withLockedValue { state -> EventLoopPromise<Void>? in
                state.connections.removeValue(forKey: id)
                guard state.connections.isEmpty, let drained = state.drained else { return nil }
                state.drained = nil
                return drained
            }
            drained?.succeed()
        }
        // Accepted while the listeners were closing: nothing is in flight on it yet.
        if draining { channel.close(promise: nil) }
        return true
    }

    /// Stops accepting, asks every connection to finish its in-flight requests (HTTP/1.1 closes
    /// after the current response, HTTP/2 sends GOAWAY, the relay tells its clients to
    /// reconnect), and after the grace period closes whatever is still open.
    private func drain(serverChannels: [any Channel]) async {
        let grace = self.runtime.configuration.shutdownGracePeriodSeconds
        self.logger.notice(
            "shutting down: no new connections; waiting for in-flight requests",
            metadata: ["grace-seconds": "\(grace)"]
        )
        for channel in serverChannels { try? await channel.close() }
        let drained = self.eventLoopGroup.next().makePromise(of: Void.self)
        let open = self.state.withLockedValue { state -> [any Channel] in
            state.draining = true
            if !state.connections.isEmpty { state.drained = drained }
            return Array(state.connections.values)
        }
        if open.isEmpty { drained.succeed() }
        for channel in open { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        let deadline = self.eventLoopGroup.next().scheduleTask(in: .seconds(grace)) { [self] in
            let remaining = self.state.withLockedValue { Array($0.connections.values) }
            if !remaining.isEmpty {
                self.logger.warning(
                    "grace period over; closing connections",
                    metadata: ["connections": "\(remaining.count)"]
                )
            }
            for channel in remaining { channel.close(promise: nil) }
        }
        try? await drained.futureResult.get()
        deadline.cancel()
        await self.runtime.shutdownBackends()
        self.logger.notice("stopped")
    }
}

/// A listener could not start; the gateway exits with one line naming the listener and the cause.
public struct ListenerStartError: Error, CustomStringConvertible, Sendable {
    public var listener: String
    public var cause: String

    public var description: String { "listener \"\(self.listener)\": \(self.cause)" }
}
