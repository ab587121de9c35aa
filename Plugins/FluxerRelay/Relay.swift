import CoreMetrics
import EthicalGateway
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// What one `fluxer-relay` backend shares across its connections and event loops.
final class Relay: Sendable {
    let configuration: RelayConfiguration
    let engine: any RelayEngine
    let namespaces: NamespaceStore
    let hub: RelayHub
    let tokenVerifier: TokenVerifier?
    /// Verifies tokens of `connect`, `refresh` and the HTTP API.
    let authenticator: RelayAuthenticator
    /// The HTTP API key, when `apiKeyFile` is set.
    let apiKey: String?
    /// The browser client, served at `/fluxer-relay.js`.
    let clientScript: ByteBuffer
    let startedAt = Date()
    let nodeID = UUID().uuidString.lowercased()
    let name: String
    let logger: Logger
    /// Set when the relay is retired: background retries stop.
    private let retired = NIOLockedValueBox(false)
    /// Open connections per user, for `maxConnectionsPerUser`.
    private let userConnections = NIOLockedValueBox<[String: Int]>([:])

    init(
        name: String,
        configuration: RelayConfiguration,
        engine: any RelayEngine,
        namespaces: NamespaceStore,
        eventLoopGroup: any EventLoopGroup,
        tokenVerifier: TokenVerifier?,
        apiKey: String?,
        clientScript: ByteBuffer,
        logger: Logger,
        metrics: RelayMetrics? = nil
    ) {
        self.name = name
        self.logger = logger
        self.configuration = configuration
        self.engine = engine
        self.namespaces = namespaces
        self.hub = RelayHub(
            eventLoopGroup: eventLoopGroup,
            engine: engine,
            metrics: metrics ?? RelayMetrics(backend: name, factory: NOOPMetricsHandler.instance)
        )
        self.tokenVerifier = tokenVerifier
        self.authenticator = RelayAuthenticator(verifier: tokenVerifier, issuers: configuration.issuers)
        self.apiKey = apiKey
        self.clientScript = clientScript
    }

    /// Starts the engine (connections, subscriptions, timers) and listening for namespace
    /// changes of other nodes: the backend's `start` step, never part of provisioning.
    func start() {
        let hub = self.hub
        self.engine.start { event in hub.dispatch(event) }
        self.namespaces.shared?.onChange { [weak self] in self?.adoptSharedNamespaces(attempt: 1) }
    }

    /// Takes the namespaces of a shared engine (another node changed them, or they may have
    /// changed while this node could not hear it); subscribers of namespaces that are gone are
    /// unsubscribed. Retried while the engine cannot be reached.
    private func adoptSharedNamespaces(attempt: Int) {
        guard let shared = self.namespaces.shared, !self.retired.withLockedValue({ $0 }) else { return }
        let eventLoop = self.hub.loopHubs[0].eventLoop
        shared.load(on: eventLoop).flatMap { stored -> EventLoopFuture<[String]> in
            guard let stored else { return eventLoop.makeSucceededFuture([]) }
            return self.namespaces.adoptShared(stored, on: eventLoop)
        }.whenComplete { outcome in
            switch outcome {
            case .success(let removed):
                guard !removed.isEmpty else { return }
                let gone = Set(removed)
                _ = self.hub.collect(on: eventLoop) { hub in
                    for connection in hub.connections.values {
                        for channel in connection.subscribedChannels
                        where gone.contains(ChannelName(channel)?.namespace ?? "default") {
                            connection.unsubscribeByServer(channel)
                        }
                    }
                }
            case .failure(let error):
                guard attempt < 30 else {
                    self.logger.error(
                        "relay: the shared namespaces could not be read",
                        metadata: ["error": "\(error)"]
                    )
                    return
                }
                eventLoop.scheduleTask(in: .seconds(1)) { self.adoptSharedNamespaces(attempt: attempt + 1) }
            }
        }
    }

    /// Stops background work (the engine's connections and timers, and retries here) and tells
    /// the clients still connected to reconnect (the `shutdown` disconnect, spread over
    /// `shutdownSpreadSeconds`): a reload replaced or removed this relay, and they reach its
    /// successor when they come back.
    func retire() async {
        self.retired.withLockedValue { $0 = true }
        let spread = self.configuration.shutdownSpreadSeconds
        _ = try? await self.hub.collect(on: self.hub.loopHubs[0].eventLoop) { hub in
            for connection in hub.connections.values {
                let delay = spread > 0 ? Double.random(in: 0..<spread) : 0
                hub.eventLoop.scheduleTask(in: .milliseconds(Int64(delay * 1000))) { [weak connection] in
                    connection?.disconnect(.shutdown)
                }
            }
        }.get()
        await self.engine.shutdown()
    }

    /// Tells the uni-directional clients (SSE, HTTP streaming) to reconnect (the `shutdown`
    /// disconnect, spread over `shutdownSpreadSeconds`) and ends their responses: the gateway is
    /// stopping or a reload replaces this relay, and it waits for requests in flight, which a
    /// stream never stops being. WebSocket clients are told by their connection's quiesce event,
    /// or by ``retire()``.
    func quiesceStreams() {
        let spread = self.configuration.shutdownSpreadSeconds
        _ = self.hub.collect(on: self.hub.loopHubs[0].eventLoop) { hub in
            for connection in hub.connections.values where connection.transport.isUnidirectional {
                let delay = spread > 0 ? Double.random(in: 0..<spread) : 0
                hub.eventLoop.scheduleTask(in: .milliseconds(Int64(delay * 1000))) { [weak connection] in
                    connection?.disconnect(.shutdown)
                }
            }
        }
    }

    /// Counts a new connection of `user`; `false` when the user is at the limit.
    func admitConnection(of user: String) -> Bool {
        let limit = self.configuration.maxConnectionsPerUser
        guard limit > 0, !user.isEmpty else { return true }
        return self.userConnections.withLockedValue { counts in
            let current = counts[user, default: 0]
            guard current < limit else { return false }
            counts[user] = current + 1
            return true
        }
    }

    /// Forgets a connection counted by ``admitConnection(of:)``.
    func releaseConnection(of user: String) {
        guard self.configuration.maxConnectionsPerUser > 0, !user.isEmpty else { return }
        self.userConnections.withLockedValue { counts in
            let remaining = counts[user, default: 1] - 1
            counts[user] = remaining > 0 ? remaining : nil
        }
    }

    /// The history policy of a namespace.
    static func historyPolicy(_ options: NamespaceOptions) -> HistoryPolicy {
        HistoryPolicy(size: options.historySize, ttlSeconds: options.historyTTLSeconds)
    }

    /// Answers a `history` request (client command or server API) with its result object:
    /// `limit` (absent or 0: only the position; negative: everything kept), `since`, `reverse`.
    /// A `since` position that cannot be served completely is error 112.
    func history(
        _ params: WireJSON,
        channel: String,
        options: NamespaceOptions,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<Result<WireJSON, RelayError>> {
        var since: StreamPosition?
        if let position = params["since"], case .object = position {
            since = StreamPosition(
                offset: position["offset"]?.unsignedValue ?? 0,
                epoch: position["epoch"]?.stringValue ?? ""
            )
        }
        let limit = params["limit"]?.intValue ?? 0
        return self.engine.history(
            channel: channel,
            since: since,
            limit: limit < 0 ? nil : limit,
            reverse: params["reverse"]?.boolValue ?? false,
            history: Self.historyPolicy(options),
            on: eventLoop
        ).map { [since] page in
            if let since, since.epoch != page.position.epoch || !page.complete {
                return .failure(.unrecoverablePosition)
            }
            return .success(RelayWire.history(page))
        }
    }

    /// Answers `presence` (the clients) or `presence_stats` (their counts, which a shared engine
    /// computes without listing them).
    func presence(channel: String, stats: Bool, on eventLoop: any EventLoop) -> EventLoopFuture<WireJSON> {
        if stats {
            return self.engine.presenceStats(channel: channel, on: eventLoop).map(RelayWire.presenceStats)
        }
        return self.engine.presence(channel: channel, on: eventLoop).map(RelayWire.presence)
    }

    /// Resolves a channel to its parsed name and namespace options.
    func resolve(_ channel: String) -> Result<(name: ChannelName, options: NamespaceOptions), RelayError> {
        guard let name = ChannelName(channel) else {
            return .failure(
                RelayError.badRequest.with(
                    message: "bad request: a channel is 1 to 255 bytes without control characters"
                )
            )
        }
        guard let options = self.namespaces[name.namespace] else {
            return .failure(
                RelayError.unknownChannel.with(message: "unknown channel: no namespace \"\(name.namespace)\"")
            )
        }
        return .success((name, options))
    }
}
