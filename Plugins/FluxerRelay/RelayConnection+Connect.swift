import DequeModule
import EthicalGateway
import Foundation
import Logging
import NIOCore
import NIOWebSocket

/// Who the connection is: the `connect` command (a token, the upgrade request's identity, or
/// anonymous), the commands held while it is verified, permissions, the server-side
/// subscriptions its token names, token expiry and `refresh`.
extension RelayConnection {
    func connect(id: UInt64, params: WireJSON) {
        self.phase = .connecting
        if let token = params["token"]?.stringValue, !token.isEmpty {
            self.relay.authenticator.verify(token, on: self.hub.eventLoop).whenSuccess { [self] outcome in
                guard self.phase == .connecting else { return }
                switch outcome {
                case .success(let identity):
                    self.completeConnect(id: id, identity: identity, params: params)
                case .failure(.notAccepted):
                    self.reply(
                        id: id,
                        error: RelayError.unauthorized.with(message: "unauthorized: this relay takes no connect tokens")
                    )
                    self.disconnect(.invalidToken)
                case .failure(.refused(let refusal)):
                    self.refuseToken(id: id, refusal)
                case .failure(.failed):
                    self.reply(id: id, error: .internal)
                    self.disconnect(.serverError)
                }
            }
        } else if let identity = self.upgradeIdentity {
            self.completeConnect(id: id, identity: identity, params: params)
        } else if self.configuration.allowAnonymous {
            self.completeConnect(id: id, identity: nil, params: params)
        } else {
            self.reply(id: id, error: RelayError.unauthorized.with(message: "unauthorized: a token is needed"))
            self.disconnect(.invalidToken)
        }
    }

    func refuseToken(id: UInt64, _ refusal: TokenRefusal) {
        guard self.phase != .closed else { return }
        if refusal.category == .expired, self.transport.isUnidirectional {
            // A uni-directional client cannot send another connect on this stream (Centrifugo's
            // uni transports turn "token expired" into this disconnect too).
            self.disconnect(.expired)
        } else if refusal.category == .expired {
            // The client fetches a new token and connects again.
            self.reply(id: id, error: RelayError.tokenExpired)
            self.phase = .awaitingConnect
            self.startConnectDeadline()
            self.runPendingCommands()
        } else {
            self.reply(id: id, error: RelayError.unauthorized.with(message: "unauthorized: \(refusal.reason)"))
            self.disconnect(RelayDisconnect.invalidToken.with(reason: "invalid token: \(refusal.reason)"))
        }
    }

    func completeConnect(id: UInt64, identity: VerifiedIdentity?, params: WireJSON) {
        guard self.phase == .connecting else { return }
        let user = identity?.subject ?? ""
        if identity != nil && user.isEmpty {
            self.reply(id: id, error: RelayError.unauthorized.with(message: "unauthorized: the token has no subject"))
            self.disconnect(.invalidToken)
            return
        }
        guard self.relay.admitConnection(of: user) else {
            self.disconnect(RelayDisconnect.connectionLimit)
            return
        }
        self.admittedUser = user
        self.identity = identity
        self.user = user
        self.connInfo = identity?.claim("info").map(WireJSON.init)
        self.permissions = self.permissions(for: identity)
        let serverSide = self.serverSideChannels()
        guard serverSide.count <= self.configuration.maxSubscriptionsPerConnection else {
            self.disconnect(
                RelayDisconnect.channelLimit.with(
                    reason:
                        "channel limit: the token names \(serverSide.count) server-side channels, at most \(self.configuration.maxSubscriptionsPerConnection)"
                )
            )
            return
        }
        let prepared = serverSide.map { channel, options in
            _ = self.register(channel, options: options, serverSide: true)
            let since = Self.recoveryPosition(params["subs"]?[channel])
            return self.prepare(channel, options: options, since: since).map { (channel, $0) }
        }
        EventLoopFuture.whenAllSucceed(prepared, on: self.hub.eventLoop).whenComplete { [self] outcome in
            guard self.phase == .connecting else { return }
            switch outcome {
            case .success(let subscriptions):
                self.finishConnect(id: id, identity: identity, subscriptions: subscriptions)
            case .failure(let error):
                self.logger.warning(
                    "relay server-side subscriptions could not be prepared",
                    metadata: ["client": "\(self.clientID)", "error": "\(error)"]
                )
                self.reply(id: id, error: RelayError(engineFailure: error))
                self.disconnect(.serverError)
            }
        }
    }

    /// The connection is who it says and its server-side subscriptions are ready: the connect
    /// result (a reply, or for a uni-directional client the `connect` push) with their
    /// results in `subs`, then the pushes they held.
    private func finishConnect(
        id: UInt64,
        identity: VerifiedIdentity?,
        subscriptions: [(String, PreparedSubscription)]
    ) {
        self.phase = .connected
        self.deadlineTask?.cancel()
        self.deadlineTask = nil
        self.startPings()
        var result: [String: WireJSON] = [
            "client": .string(self.clientID),
            "version": .string(GatewayVersion.current),
            "ping": .number(String(self.configuration.pingIntervalSeconds)),
        ]
        if !self.transport.isUnidirectional { result["pong"] = .bool(true) }
        if let identity {
            result["expires"] = .bool(true)
            result["ttl"] = .number(String(self.scheduleExpiry(at: identity.expiresAt)))
        }
        if !subscriptions.isEmpty {
            result["subs"] = .object(
                Dictionary(subscriptions.map { ($0.0, WireJSON.object($0.1.result)) }, uniquingKeysWith: { a, _ in a })
            )
        }
        if self.transport.isUnidirectional {
            self.send(Push.frame(Push.connect(.object(result))), publicationOf: nil, options: nil)
        } else {
            self.reply(id: id, method: "connect", result: .object(result))
        }
        for (channel, prepared) in subscriptions {
            self.activate(channel, lastOffset: prepared.lastOffset)
        }
        self.runPendingCommands()
    }

    /// The channels the server subscribes this connection to: the exact names (not `prefix*`
    /// grants) of the token's channels claim whose namespace has `serverSideSubscriptions`.
    /// Entries of other namespaces only grant `subscribe` (see ``ChannelPermissions``).
    func serverSideChannels() -> [(String, NamespaceOptions)] {
        var seen: Set<String> = []
        var channels: [(String, NamespaceOptions)] = []
        for grant in self.permissions.channelGrants where !grant.hasSuffix("*") && seen.insert(grant).inserted {
            guard case .success(let resolved) = self.relay.resolve(grant), resolved.options.serverSideSubscriptions
            else { continue }
            channels.append((grant, resolved.options))
        }
        return channels
    }

    /// The position a `connect` command's `subs` entry asks to recover from (`{"recover": true,
    /// "offset": …, "epoch": …}`), or nil when it asks for none.
    static func recoveryPosition(_ entry: WireJSON?) -> StreamPosition? {
        guard let entry, entry["recover"]?.boolValue == true else { return nil }
        return StreamPosition(offset: entry["offset"]?.unsignedValue ?? 0, epoch: entry["epoch"]?.stringValue ?? "")
    }

    /// Commands a client may send behind `connect` before its reply: SDKs send a few (the
    /// subscriptions they restore); more is a client that does not wait for the reply.
    static let maxPendingCommands = 32

    /// Bytes of commands a client may send behind `connect` before its reply: one message's worth.
    var maxPendingBytes: Int { self.configuration.maxMessageBytes }

    /// Keeps a command that arrived while `connect` is verified, to run once it is answered.
    ///
    /// Past ``maxPendingCommands`` or ``maxPendingBytes`` the client is closed with 3501 (bad
    /// request). Centrifugo never buffers here: it handles one command at a time and does not
    /// read the next until `connect` is answered, so a client cannot pile commands up; its code
    /// for a client that breaks the command order is 3501 ("malformed protocol frames or wrong
    /// order of commands"), which is also terminal, so the client does not reconnect to do it
    /// again. 3009 is Centrifugo's write error and would tell the client to reconnect.
    func holdWhileConnecting(_ command: [UInt8]) {
        guard self.pendingCommands.count < Self.maxPendingCommands,
            self.pendingBytes + command.count <= self.maxPendingBytes
        else {
            self.pendingCommands = []
            self.pendingBytes = 0
            self.disconnect(
                RelayDisconnect.badRequest.with(reason: "bad request: too many commands before the connect reply")
            )
            return
        }
        self.pendingCommands.append(command)
        self.pendingBytes += command.count
    }

    func runPendingCommands() {
        let commands = self.pendingCommands
        self.pendingCommands = []
        self.pendingBytes = 0
        for command in commands { self.receive(command) }
    }

    func permissions(for identity: VerifiedIdentity?) -> ChannelPermissions {
        var grants: [String] = []
        switch identity?.claim(self.configuration.channelsClaim) {
        case .array(let values)?: grants = values.compactMap(\.stringValue)
        case .string(let value)?: grants = value.split(separator: " ").map(String.init)
        default: break
        }
        return ChannelPermissions(
            user: identity?.subject ?? "",
            scopes: identity?.scopes ?? [],
            channelGrants: grants,
            publishScope: self.configuration.publishScope
        )
    }

    /// Disconnects the connection when its token expires (after the grace a refresh may take).
    /// - Returns: the seconds until expiry, for the reply's `ttl`.
    func scheduleExpiry(at expiresAt: Double) -> Int {
        self.expiryTask?.cancel()
        let remaining = max(0, expiresAt - Date().timeIntervalSince1970)
        let grace = Double(self.configuration.pongTimeoutSeconds)
        self.expiryTask = self.hub.eventLoop.scheduleTask(in: .milliseconds(Int64((remaining + grace) * 1000))) {
            [weak self] in
            self?.disconnect(.expired)
        }
        return max(1, Int(remaining.rounded(.down)))
    }

    func refresh(id: UInt64, params: WireJSON) {
        guard let token = params["token"]?.stringValue, !token.isEmpty else {
            self.reply(id: id, error: RelayError.badRequest.with(message: "bad request: refresh needs a token"))
            return
        }
        self.relay.authenticator.verify(token, on: self.hub.eventLoop).whenSuccess { [self] outcome in
            guard self.phase == .connected else { return }
            switch outcome {
            case .success(let identity):
                guard identity.subject == self.identity?.subject || (self.identity == nil && self.user.isEmpty) else {
                    self.reply(
                        id: id,
                        error: RelayError.permissionDenied.with(
                            message: "permission denied: the token is for another user"
                        )
                    )
                    return
                }
                let user = identity.subject ?? ""
                if self.identity == nil, !user.isEmpty {
                    // An anonymous connection becomes its user's only through a new connect.
                    self.reply(
                        id: id,
                        error: RelayError.permissionDenied.with(message: "permission denied: reconnect to change user")
                    )
                    return
                }
                self.identity = identity
                self.permissions = self.permissions(for: identity)
                let ttl = self.scheduleExpiry(at: identity.expiresAt)
                self.reply(
                    id: id,
                    method: "refresh",
                    result: .object([
                        "client": .string(self.clientID), "version": .string(GatewayVersion.current),
                        "expires": .bool(true), "ttl": .number(String(ttl)),
                    ])
                )
            case .failure(.notAccepted):
                self.reply(
                    id: id,
                    error: RelayError.unauthorized.with(message: "unauthorized: this relay takes no refresh tokens")
                )
            case .failure(.refused(let refusal)):
                let error = refusal.category == .expired ? RelayError.tokenExpired : RelayError.unauthorized
                self.reply(id: id, error: error.with(message: "\(error.message): \(refusal.reason)"))
            case .failure(.failed):
                self.reply(id: id, error: .internal)
            }
        }
    }

    func subRefresh(id: UInt64, params: WireJSON) {
        guard let channel = params["channel"]?.stringValue, self.subscriptions[channel]?.subscribed == true else {
            self.reply(
                id: id,
                error: RelayError.badRequest.with(message: "bad request: not subscribed to that channel")
            )
            return
        }
        // Subscriptions carry no tokens of their own: the connection's token grants them.
        self.reply(id: id, method: "sub_refresh", result: .object(["expires": .bool(false)]))
    }
}
