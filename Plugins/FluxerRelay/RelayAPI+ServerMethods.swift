import EthicalGateway
import Foundation
import NIOCore
import NIOHTTP1

/// The Centrifugo-compatible server API: `POST /api/<method>` with a JSON object, answered
/// `{"result": …}` or `{"error": {"code": …, "message": …}}` with status 200, as `cent` expects.
extension RelayAPI {
    func serverMethod(_ method: String) {
        let params: WireJSON
        do {
            params = self.body.readableBytes == 0 ? .object([:]) : try WireJSON.parse(self.body.readableBytesView)
        } catch {
            self.respondError(RelayError.badRequest.with(message: "bad request: the body is not JSON: \(error)"))
            return
        }
        guard case .object = params else {
            self.respondError(RelayError.badRequest.with(message: "bad request: the body must be a JSON object"))
            return
        }
        switch method {
        case "publish": self.publish(params)
        case "broadcast": self.broadcast(params)
        case "presence": self.presence(params, stats: false)
        case "presence_stats": self.presence(params, stats: true)
        case "history": self.history(params)
        case "history_remove": self.historyRemove(params)
        case "subscribe": self.subscribe(params)
        case "unsubscribe": self.unsubscribe(params)
        case "disconnect": self.disconnect(params)
        case "channels": self.channels(params)
        case "info": self.info()
        default: self.respondError(RelayError.methodNotFound.with(message: "method not found: \(method)"))
        }
    }

    func requiredChannel(_ params: WireJSON) -> (String, NamespaceOptions)? {
        guard let channel = params["channel"]?.stringValue else {
            self.respondError(RelayError.badRequest.with(message: "bad request: channel must be a string"))
            return nil
        }
        switch self.relay.resolve(channel) {
        case .success(let resolved): return (channel, resolved.options)
        case .failure(let error):
            self.respondError(error)
            return nil
        }
    }

    /// Validates a publication's fields; the error names the field.
    func publication(_ params: WireJSON) -> Result<(data: WireJSON, tags: [String: String]), RelayError> {
        if params["b64data"] != nil {
            return .failure(
                RelayError.badRequest.with(message: "bad request: b64data is not supported; send data as JSON")
            )
        }
        guard let data = params["data"] else {
            return .failure(RelayError.badRequest.with(message: "bad request: data is required"))
        }
        let size = data.encoded.readableBytes
        guard size <= self.relay.configuration.maxMessageBytes else {
            return .failure(
                RelayError.limitExceeded.with(
                    message:
                        "limit exceeded: data is \(size) bytes, at most \(self.relay.configuration.maxMessageBytes)"
                )
            )
        }
        var tags: [String: String] = [:]
        if let raw = params["tags"] {
            guard case .object(let members) = raw else {
                return .failure(RelayError.badRequest.with(message: "bad request: tags must be an object of strings"))
            }
            for (key, value) in members {
                guard let string = value.stringValue else {
                    return .failure(RelayError.badRequest.with(message: "bad request: tags.\(key) must be a string"))
                }
                tags[key] = string
            }
        }
        return .success((data, tags))
    }

    func idempotencyKey(_ params: WireJSON) -> String? {
        params["idempotency_key"]?.stringValue ?? self.request.head.headers.first(name: "idempotency-key")
    }

    func publishOne(
        channel: String,
        options: NamespaceOptions,
        data: WireJSON,
        tags: [String: String],
        skipHistory: Bool,
        idempotencyKey: String?
    ) -> EventLoopFuture<WireJSON> {
        let history =
            skipHistory ? HistoryPolicy(size: 0, ttlSeconds: options.historyTTLSeconds) : Relay.historyPolicy(options)
        return self.relay.engine.publish(
            channel: channel,
            data: data,
            info: nil,
            tags: tags,
            history: history,
            idempotencyKey: idempotencyKey,
            idempotencyWindow: Double(self.relay.configuration.idempotencyWindowSeconds),
            on: self.request.eventLoop
        ).map { outcome in
            guard let position = outcome.position else { return .object([:]) }
            return .object(["offset": .number(String(position.offset)), "epoch": .string(position.epoch)])
        }
    }

    func publish(_ params: WireJSON) {
        guard let (channel, options) = self.requiredChannel(params) else { return }
        switch self.publication(params) {
        case .failure(let error): self.respondError(error)
        case .success(let publication):
            self.publishOne(
                channel: channel,
                options: options,
                data: publication.data,
                tags: publication.tags,
                skipHistory: params["skip_history"]?.boolValue ?? false,
                idempotencyKey: self.idempotencyKey(params)
            ).whenComplete { self.respond($0) }
        }
    }

    func broadcast(_ params: WireJSON) {
        guard case .array(let names)? = params["channels"], !names.isEmpty else {
            self.respondError(RelayError.badRequest.with(message: "bad request: channels must be a non-empty array"))
            return
        }
        let publication: (data: WireJSON, tags: [String: String])
        switch self.publication(params) {
        case .failure(let error):
            self.respondError(error)
            return
        case .success(let value): publication = value
        }
        let key = self.idempotencyKey(params)
        let eventLoop = self.request.eventLoop
        let responses = names.enumerated().map { offset, name -> EventLoopFuture<WireJSON> in
            guard let channel = name.stringValue else {
                return eventLoop.makeSucceededFuture(
                    Self.errorObject(
                        RelayError.badRequest.with(message: "bad request: channels[\(offset)] must be a string")
                    )
                )
            }
            switch self.relay.resolve(channel) {
            case .failure(let error): return eventLoop.makeSucceededFuture(Self.errorObject(error))
            case .success(let resolved):
                return self.publishOne(
                    channel: channel,
                    options: resolved.options,
                    data: publication.data,
                    tags: publication.tags,
                    skipHistory: params["skip_history"]?.boolValue ?? false,
                    idempotencyKey: key
                ).map { WireJSON.object(["result": $0]) }
            }
        }
        EventLoopFuture.whenAllSucceed(responses, on: eventLoop).whenComplete { outcome in
            self.respond(outcome.map { WireJSON.object(["responses": .array($0)]) })
        }
    }

    func presence(_ params: WireJSON, stats: Bool) {
        guard let (channel, options) = self.requiredChannel(params) else { return }
        guard options.presence else {
            self.respondError(RelayError.notAvailable.with(message: "not available: presence is off in this namespace"))
            return
        }
        self.relay.presence(channel: channel, stats: stats, on: self.request.eventLoop).whenComplete { outcome in
            self.respond(outcome)
        }
    }

    func history(_ params: WireJSON) {
        if let typeError = CommandParameters.typeError(method: "history", params: params) {
            self.respondError(typeError)
            return
        }
        guard let (channel, options) = self.requiredChannel(params) else { return }
        guard options.historySize > 0 else {
            self.respondError(RelayError.notAvailable.with(message: "not available: history is off in this namespace"))
            return
        }
        self.relay.history(params, channel: channel, options: options, on: self.request.eventLoop).whenComplete {
            outcome in
            switch outcome {
            case .success(.success(let result)): self.respond(.success(result))
            case .success(.failure(let error)): self.respondError(error)
            case .failure(let error): self.respond(.failure(error))
            }
        }
    }

    func historyRemove(_ params: WireJSON) {
        guard let (channel, _) = self.requiredChannel(params) else { return }
        self.relay.engine.removeHistory(channel: channel, on: self.request.eventLoop).whenComplete { outcome in
            self.respond(outcome.map { WireJSON.object([:]) })
        }
    }

    /// Runs `body` on every connection of `user` (and `client`, if given) on every loop.
    func forEachConnection(
        of params: WireJSON,
        _ body: @escaping @Sendable (RelayConnection) -> Void
    ) -> Bool {
        guard let user = params["user"]?.stringValue, !user.isEmpty else {
            self.respondError(RelayError.badRequest.with(message: "bad request: user must be a non-empty string"))
            return false
        }
        let client = params["client"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        _ = self.relay.hub.collect(on: self.request.eventLoop) { hub in
            for connection in hub.connections.values where connection.user == user {
                if let client, connection.clientID != client { continue }
                body(connection)
            }
        }
        return true
    }

    /// Subscribes the connections of `user` (and `client`, if given) to `channel` from the
    /// server's side: each gets a `subscribe` push and then the channel's pushes, as with a
    /// channel of its token's claim (`recover_since` is not supported).
    func subscribe(_ params: WireJSON) {
        guard let (channel, options) = self.requiredChannel(params) else { return }
        if params["recover_since"].map({ if case .null = $0 { return false } else { return true } }) == true {
            self.respondError(RelayError.badRequest.with(message: "bad request: recover_since is not supported"))
            return
        }
        if self.forEachConnection(of: params, { $0.subscribeByServer(channel, options: options) }) {
            self.respond(.success(.object([:])))
        }
    }

    func unsubscribe(_ params: WireJSON) {
        guard let channel = params["channel"]?.stringValue else {
            self.respondError(RelayError.badRequest.with(message: "bad request: channel must be a string"))
            return
        }
        if self.forEachConnection(of: params, { $0.unsubscribeByServer(channel) }) {
            self.respond(.success(.object([:])))
        }
    }

    func disconnect(_ params: WireJSON) {
        var reason = RelayDisconnect.forceNoReconnect
        if let custom = params["disconnect"] {
            guard let code = custom["code"]?.intValue, (3000..<5000).contains(code) else {
                self.respondError(
                    RelayError.badRequest.with(message: "bad request: disconnect.code must be 3000 to 4999")
                )
                return
            }
            reason = RelayDisconnect(code: UInt16(code), reason: custom["reason"]?.stringValue ?? "")
        }
        let chosen = reason
        if self.forEachConnection(of: params, { $0.disconnect(chosen) }) {
            self.respond(.success(.object([:])))
        }
    }

    func channels(_ params: WireJSON) {
        let pattern = params["pattern"]?.stringValue
        self.relay.hub.collect(on: self.request.eventLoop) { hub in
            hub.subscribers.mapValues(\.count)
        }.whenComplete { outcome in
            self.respond(
                outcome.map { perLoop in
                    var counts: [String: Int] = [:]
                    for loop in perLoop { counts.merge(loop, uniquingKeysWith: +) }
                    let matching = counts.filter { entry in
                        guard let pattern else { return true }
                        return Self.matches(entry.key, pattern)
                    }
                    return .object([
                        "channels": .object(matching.mapValues { .object(["num_clients": .number(String($0))]) })
                    ])
                }
            )
        }
    }

    /// A glob with `*` as its only wildcard, as the `channels` method takes.
    static func matches(_ channel: String, _ pattern: String) -> Bool {
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false)
        guard parts.count > 1 else { return channel == pattern }
        var rest = Substring(channel)
        for (index, part) in parts.enumerated() {
            if index == 0 {
                guard rest.hasPrefix(part) else { return false }
                rest = rest.dropFirst(part.count)
            } else if index == parts.count - 1 {
                return rest.hasSuffix(part)
            } else if let range = rest.range(of: part) {
                rest = rest[range.upperBound...]
            } else {
                return false
            }
        }
        return true
    }

    func info() {
        let relay = self.relay
        relay.hub.collect(on: self.request.eventLoop) { hub in
            (
                clients: hub.connections.count,
                users: Set(hub.connections.values.map(\.user)),
                channels: Set(hub.subscribers.keys),
                subscriptions: hub.subscribers.values.reduce(0) { $0 + $1.count }
            )
        }.whenComplete { outcome in
            self.respond(
                outcome.map { perLoop in
                    let users = perLoop.reduce(into: Set<String>()) { $0.formUnion($1.users) }
                    let channels = perLoop.reduce(into: Set<String>()) { $0.formUnion($1.channels) }
                    let node: [String: WireJSON] = [
                        "uid": .string(relay.nodeID),
                        "name": .string(relay.name),
                        "version": .string(GatewayVersion.current),
                        "num_clients": .number(String(perLoop.reduce(0) { $0 + $1.clients })),
                        "num_users": .number(String(users.count)),
                        "num_channels": .number(String(channels.count)),
                        "num_subs": .number(String(perLoop.reduce(0) { $0 + $1.subscriptions })),
                        "uptime": .number(String(Int(Date().timeIntervalSince(relay.startedAt)))),
                    ]
                    return .object(["nodes": .array([.object(node)])])
                }
            )
        }
    }
}
