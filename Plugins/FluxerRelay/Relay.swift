import EthicalGateway
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// What one `fluxer-relay` backend shares across its connections and event loops.
final class Relay: Sendable {
    let configuration: RelayConfiguration
    let engine: any RelayEngine
    let namespaces: NamespaceStore
    let hub: RelayHub
    let tokenVerifier: TokenVerifier?
    /// The HTTP API key, when `apiKeyFile` is set.
    let apiKey: String?
    /// The browser client, served at `/fluxer-relay.js`.
    let clientScript: ByteBuffer
    let startedAt = Date()
    let nodeID = UUID().uuidString.lowercased()
    let name: String
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
        clientScript: ByteBuffer
    ) {
        self.name = name
        self.configuration = configuration
        self.engine = engine
        self.namespaces = namespaces
        self.hub = RelayHub(eventLoopGroup: eventLoopGroup, engine: engine)
        self.tokenVerifier = tokenVerifier
        self.apiKey = apiKey
        self.clientScript = clientScript
        let hub = self.hub
        engine.start { event in hub.dispatch(event) }
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
