import CoreMetrics
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
    /// The runtime in service (the latest one applied).
    public var runtime: GatewayRuntime { self.live.current }
    let live: LiveRuntime
    /// The gateway's metrics (`/metrics` on the admin listener).
    public let metrics: GatewayMetrics
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    private struct State {
        var boundAddresses: [String: SocketAddress]?
        var startFailure: (any Error)?
        /// Callers of ``waitUntilListening()`` that came before the listeners were bound.
        var listeningWaiters: [CheckedContinuation<[String: SocketAddress], any Error>] = []
        /// The bound listeners, in configuration order.
        var sockets: [ListenerSocket] = []
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
        /// Runtimes replaced by a reload whose in-flight requests are still finishing; the
        /// shutdown waits for them.
        var retiring: [UInt64: Task<Void, Never>] = [:]
        var nextRetirement: UInt64 = 0
    }

    public init(
        runtime: GatewayRuntime,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger,
        metrics: GatewayMetrics = GatewayMetrics()
    ) {
        self.live = LiveRuntime(runtime, eventLoopGroup: eventLoopGroup)
        self.metrics = metrics
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

    /// The local address of each listener in service now, by name (changes with reloads).
    public func listenerAddresses() -> [String: SocketAddress] {
        self.state.withLockedValue { state in
            var addresses: [String: SocketAddress] = [:]
            for socket in state.sockets {
                if let address = socket.channel.localAddress { addresses[socket.name] = address }
            }
            return addresses
        }
    }

    /// The Prometheus text of every metric: the registry's (swift-metrics) and the per-loop HTTP
    /// request metrics.
    public func metricsText() async -> String {
        let http = await self.live.httpMetrics()
        return self.metrics.registry.emitToString() + http.text + (await self.metrics.loopHistogramsText())
    }

    /// Whether every listener is bound and the gateway is not shutting down.
    public var isServing: Bool {
        self.state.withLockedValue { $0.boundAddresses != nil && !$0.draining }
    }

    /// Previous configurations still being retired after reloads (waiting for their requests
    /// in flight, at most the grace period, before shutting down what the new one dropped).
    public var retirementsInProgress: Int {
        self.state.withLockedValue { $0.retiring.count }
    }

    public func run() async throws {
        let runtime = self.live.current
        let sockets: [ListenerSocket]
        do {
            try await runtime.start()
            runtime.activate()
            do {
                sockets = try await self.bindListeners(of: runtime, reusing: [])
            } catch {
                await runtime.shutdownBackends()
                throw error
            }
        } catch {
            self.finishStart(.failure(error))
            throw error
        }
        self.state.withLockedValue { $0.sockets = sockets }
        for socket in sockets { self.logListening(socket) }
        self.finishStart(.success(self.listenerAddresses()))

        try? await gracefulShutdown()
        await self.drain()
    }

    private func logListening(_ socket: ListenerSocket) {
        self.logger.notice(
            "listening",
            metadata: [
                "listener": "\(socket.name)",
                "address": "\(socket.channel.localAddress.map { "\($0)" } ?? "?")",
                "kind": "\(socket.pipeline.withLockedValue { $0.kind.name })",
            ]
        )
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

    // MARK: Reload

    /// Puts `runtime` (built with the runtime in service as `previous`) in service: starts what
    /// it did not take over, binds its new listeners, re-configures the kept ones, closes the
    /// removed ones, and swaps it in on every event loop. Requests in flight finish on the
    /// runtime they started with; the backends it does not carry over are shut down once those
    /// requests finished (at most the shutdown grace period later).
    ///
    /// When a step fails nothing changes: what was started or bound for `runtime` is stopped
    /// again and the error says why. Calls must not overlap (the ``ConfigController`` runs one
    /// at a time).
    public func apply(_ runtime: GatewayRuntime) async throws {
        let (serving, kept) = self.state.withLockedValue { ($0.boundAddresses != nil && !$0.draining, $0.sockets) }
        guard serving else {
            await runtime.shutdownNew()
            throw ConfigValidationError([
                ConfigIssue(path: "$", message: "the gateway is not serving (starting or stopping)")
            ])
        }
        let previous = self.live.current
        let sockets: [ListenerSocket]
        do {
            try await runtime.start()
            do {
                sockets = try await self.bindListeners(of: runtime, reusing: kept)
            } catch {
                await runtime.shutdownNew()
                throw error
            }
        } catch let error as ListenerStartError {
            let index = runtime.configuration.listeners.first { $0.name == error.listener }?.index
            throw ConfigValidationError([
                ConfigIssue(path: index.map { "$.listeners[\($0)]" } ?? "$.listeners", message: error.description)
            ])
        }
        let reused = Set(sockets.map(ObjectIdentifier.init))
        let removed = kept.filter { !reused.contains(ObjectIdentifier($0)) }
        for socket in sockets { socket.install() }
        runtime.activate()
        await self.live.install(runtime)
        let stopping = self.state.withLockedValue { state -> Bool in
            // A shutdown that began during this reload closes these sockets too.
            if !state.draining { state.sockets = sockets }
            return state.draining
        }
        if stopping {
            for socket in sockets where !kept.contains(where: { $0 === socket }) { try? await socket.channel.close() }
        }
        for socket in removed {
            self.logger.notice("listener closed by reload", metadata: ["listener": "\(socket.name)"])
            try? await socket.channel.close()
            // Its connections finish what they are doing and close, as at shutdown (HTTP/1.1
            // after the current response, HTTP/2 with GOAWAY, relay clients told to reconnect).
            let accepted = self.state.withLockedValue { state in
                state.connections.values.filter { $0.parent === socket.channel }
            }
            for channel in accepted { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        }
        for socket in sockets where !kept.contains(where: { $0 === socket }) { self.logListening(socket) }

        let grace = runtime.configuration.shutdownGracePeriodSeconds
        let logger = self.logger
        // Awaited by the shutdown; removes itself when done.
        self.state.withLockedValue { state in
            let id = state.nextRetirement
            state.nextRetirement += 1
            state.retiring[id] = Task {
                previous.quiesceBackends(replacedBy: runtime)
                // Nothing to shut down: what is in flight goes on with what it uses.
                if previous.retiresAnything(replacedBy: runtime) {
                    await Self.waitForInFlight(of: previous, graceSeconds: grace, logger: logger)
                    await previous.retire(replacedBy: runtime)
                }
                _ = self.state.withLockedValue { $0.retiring.removeValue(forKey: id) }
            }
        }
    }

    /// Waits until no request that started on `runtime` is in flight, or the grace period ends.
    private static func waitForInFlight(of runtime: GatewayRuntime, graceSeconds: Double, logger: Logger) async {
        let deadline = ContinuousClock.now + .milliseconds(Int64(graceSeconds * 1000))
        while true {
            let open = await runtime.requestsInFlight()
            if open == 0 { return }
            if ContinuousClock.now >= deadline {
                logger.warning(
                    "grace period over; retiring the previous configuration's backends with requests in flight",
                    metadata: ["requests": "\(open)"]
                )
                return
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    // MARK: Listeners

    /// Binds (or takes over from `reusing`) a socket for every listener of `runtime`, each with
    /// a pipeline prepared but not yet installed (``ListenerSocket/install()``). A listener keeps
    /// the socket of the listener with its name on the same address and port (or of any
    /// listener on that address and port), so a reload does not re-bind what it keeps. On a
    /// failure the sockets bound here are closed again.
    private func bindListeners(
        of runtime: GatewayRuntime,
        reusing kept: [ListenerSocket]
    ) async throws
        -> [ListenerSocket]
    {
        var available = kept
        var result: [ListenerSocket] = []
        var bound: [ListenerSocket] = []
        do {
            for listener in runtime.configuration.listeners {
                let pipeline = try self.pipeline(for: listener, of: runtime)
                let match =
                    available.firstIndex { $0.name == listener.name && $0.matches(listener, sameName: true) }
                    ?? available.firstIndex { $0.matches(listener, sameName: false) }
                if let match {
                    let socket = available.remove(at: match)
                    socket.prepare(pipeline, name: listener.name, configuration: listener)
                    result.append(socket)
                } else {
                    let socket = try await self.bind(listener, pipeline: pipeline)
                    bound.append(socket)
                    result.append(socket)
                }
            }
        } catch {
            for socket in bound { try? await socket.channel.close() }
            throw error
        }
        return result
    }

    private func pipeline(for listener: ListenerConfiguration, of runtime: GatewayRuntime) throws -> ListenerPipeline {
        let kind: ListenerPipeline.Kind
        if let tls = listener.tls, let store = runtime.certificateStores[listener.index] {
            do {
                kind = .tls(
                    try NIOSSLContext(
                        configuration: store.makeTLSConfiguration(minimumVersion: tls.minimumVersion, http2: tls.http2)
                    ),
                    hsts: tls.hsts?.headerValue,
                    handshakes: TLSHandshakeCounters(listener: listener.name, factory: self.metrics.factory)
                )
            } catch {
                throw ListenerStartError(listener: listener.name, cause: "TLS set-up failed: \(error)")
            }
        } else if let redirect = listener.redirectToHTTPS {
            kind = .redirectToHTTPS(port: redirect.port)
        } else {
            kind = .plain
        }
        return ListenerPipeline(kind: kind, live: self.live, logger: self.logger)
    }

    private func bind(_ listener: ListenerConfiguration, pipeline: ListenerPipeline) async throws -> ListenerSocket {
        let installed = NIOLockedValueBox(pipeline)
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
                let pipeline = installed.withLockedValue { $0 }
                let gauge = self.metrics.openConnections(listener: listener.name, protocol: pipeline.kind.name)
                guard self.track(channel, gauge: gauge) else {
                    // Past limits.maxConnections: failing the initializer closes the connection.
                    return channel.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
                }
                return channel.eventLoop.makeCompletedFuture {
                    try pipeline.configure(channel)
                }
            }
        do {
            let channel = try await bootstrap.bind(host: listener.address, port: listener.port).get()
            return ListenerSocket(channel: channel, pipeline: installed, name: listener.name, configuration: listener)
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
    private func track(_ channel: any Channel, gauge: Meter) -> Bool {
        let id = ObjectIdentifier(channel)
        let maxConnections = self.live.runtime(on: channel.eventLoop).limits.maxConnections
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
        gauge.increment(by: 1)
        channel.closeFuture.whenComplete { _ in
            gauge.decrement(by: 1)
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
    private func drain() async {
        let grace = self.live.current.configuration.shutdownGracePeriodSeconds
        self.logger.notice(
            "shutting down: no new connections; waiting for in-flight requests",
            metadata: ["grace-seconds": "\(grace)"]
        )
        let sockets = self.state.withLockedValue { state in
            state.draining = true
            return state.sockets
        }
        for socket in sockets { try? await socket.channel.close() }
        let drained = self.eventLoopGroup.next().makePromise(of: Void.self)
        let open = self.state.withLockedValue { state -> [any Channel] in
            if !state.connections.isEmpty { state.drained = drained }
            return Array(state.connections.values)
        }
        if open.isEmpty { drained.succeed() }
        for channel in open { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        self.live.current.quiesceBackends(replacedBy: nil)
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
        for retirement in self.state.withLockedValue({ Array($0.retiring.values) }) { await retirement.value }
        await self.live.current.shutdownBackends()
        self.logger.notice("stopped")
    }
}

/// A listener could not start; the gateway exits with one line naming the listener and the cause.
public struct ListenerStartError: Error, CustomStringConvertible, Sendable {
    public var listener: String
    public var cause: String

    public var description: String { "listener \"\(self.listener)\": \(self.cause)" }
}
