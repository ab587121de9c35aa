import EthicalGateway
import Foundation
import NIOCore
import NIOHTTP1

/// One request to the relay's HTTP API for services.
///
/// Centrifugo-compatible server API: `POST /api/<method>` with a JSON object, answered
/// `200 {"result": …}` or `200 {"error": {"code": …, "message": …}}` (so `cent` and other
/// server SDKs work). Our own REST resources: `GET /api/stats`, `GET /api/namespaces` and
/// `GET`/`PUT`/`PATCH`/`DELETE /api/namespaces/{name}`, answered with HTTP statuses and
/// RFC 9457 problem documents.
///
/// Confined to the request's event loop: the gateway calls it there and every future it waits
/// for completes there, hence `@unchecked Sendable`.
final class RelayAPI: RequestBodyReceiver, @unchecked Sendable {
    private let relay: Relay
    private let request: GatewayRequest
    private let response: ResponseWriter
    private var body = ByteBuffer()

    init(relay: Relay, request: GatewayRequest, response: ResponseWriter) {
        self.relay = relay
        self.request = request
        self.response = response
    }

    /// Whether the credentials were accepted; `nil` while a token is being verified.
    private var authorized: Bool?
    private var bodyComplete = false

    /// Checks credentials, then reads the body (if any) and answers.
    func start() -> any RequestBodyReceiver {
        switch self.credentials() {
        case .accepted:
            self.authorized = true
        case .refused(let reason):
            self.refuse(reason)
            return DiscardingBodyReceiver.shared
        case .forbidden(let reason):
            self.forbid(reason)
            return DiscardingBodyReceiver.shared
        case .verify(let token):
            self.relay.authenticator.verify(token, on: self.request.eventLoop).whenSuccess { outcome in
                let scope = self.relay.configuration.apiScope
                switch outcome {
                case .success(let identity) where identity.scopes.contains(scope):
                    self.authorized = true
                    if self.bodyComplete { self.dispatch() }
                case .success:
                    self.authorized = false
                    self.forbid("the token lacks the scope \(scope)")
                case .failure(.refused(let refusal)):
                    self.authorized = false
                    self.refuse("the token was refused: \(refusal.reason)", error: refusal.errorCode ?? "invalid_token")
                case .failure(.notAccepted):
                    self.authorized = false
                    self.refuse("this relay verifies no bearer tokens; send the API key")
                case .failure(.failed(let error)):
                    self.authorized = false
                    self.request.logger.warning("relay API token verification failed", metadata: ["error": "\(error)"])
                    self.respondProblem(.serviceUnavailable, "the token could not be verified now; retry")
                }
            }
        }
        return self
    }

    /// 401: no credentials, or ones that are not valid (RFC 6750 3.1: `invalid_token` for a
    /// bearer token that was refused).
    private func refuse(_ reason: String, error: String? = nil) {
        var challenge = "Bearer realm=\"fluxer-relay\""
        if let error { challenge += ", error=\"\(error)\"" }
        var headers = HTTPHeaders()
        headers.add(name: "www-authenticate", value: challenge)
        self.respondProblem(.unauthorized, reason, headers: headers)
    }

    /// 403: a valid token without the API scope (RFC 6750 3.1: `insufficient_scope`, naming
    /// the scope needed), as routes with `auth` answer; a new token with the scope would do.
    private func forbid(_ reason: String) {
        let scope = self.relay.configuration.apiScope
        var headers = HTTPHeaders()
        headers.add(
            name: "www-authenticate",
            value: "Bearer realm=\"fluxer-relay\", error=\"insufficient_scope\", scope=\"\(scope)\""
        )
        self.respondProblem(.forbidden, reason, headers: headers)
    }

    func receiveBody(_ buffer: ByteBuffer) {
        guard self.authorized != false else { return }
        var buffer = buffer
        self.body.writeBuffer(&buffer)
    }

    func receiveEnd() {
        self.bodyComplete = true
        if self.authorized == true { self.dispatch() }
    }

    private func dispatch() {
        let resource = String(self.request.path.dropFirst(RelayBackend.apiPrefix.count))
        switch (self.request.head.method, resource) {
        case (.GET, "stats"): self.stats()
        case (.GET, "namespaces"): self.listNamespaces()
        case (_, _) where resource.hasPrefix("namespaces/"):
            self.namespace(String(resource.dropFirst("namespaces/".count)))
        case (.POST, _): self.serverMethod(resource)
        default:
            self.respondProblem(
                .methodNotAllowed,
                "server API methods are POST; stats and namespaces are REST resources"
            )
        }
    }

    func cancel() {}

    // MARK: Authentication

    private enum Credentials {
        case accepted
        /// Missing or not valid: 401.
        case refused(String)
        /// A valid token without the API scope: 403.
        case forbidden(String)
        /// A bearer token for ``RelayAuthenticator``.
        case verify(String)
    }

    /// An API key (`X-API-Key` or `Authorization: apikey KEY`), a token the route's `auth`
    /// verified, or a bearer token verified here by the relay's `issuers`; tokens need `apiScope`.
    private func credentials() -> Credentials {
        let headers = self.request.head.headers
        let authorization = headers.first(name: "authorization")
        let scope = self.relay.configuration.apiScope
        var presentedKey = headers.first(name: "x-api-key")
        if let authorization, authorization.lowercased().hasPrefix("apikey ") {
            presentedKey = String(authorization.dropFirst("apikey ".count))
        }
        if let presentedKey {
            guard let key = self.relay.apiKey else { return .refused("this relay has no API key; use a token") }
            return constantTimeEquals(presentedKey, key) ? .accepted : .refused("the API key is wrong")
        }
        if let identity = self.request.identity {
            return identity.scopes.contains(scope) ? .accepted : .forbidden("the token lacks the scope \(scope)")
        }
        if let authorization, authorization.lowercased().hasPrefix("bearer "), self.relay.authenticator.acceptsTokens {
            return .verify(String(authorization.dropFirst("bearer ".count)))
        }
        return .refused("send an API key (X-API-Key) or a bearer token with the scope \(scope)")
    }

    // MARK: Server API (Centrifugo-compatible)

    private func serverMethod(_ method: String) {
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
        case "unsubscribe": self.unsubscribe(params)
        case "disconnect": self.disconnect(params)
        case "channels": self.channels(params)
        case "info": self.info()
        default: self.respondError(RelayError.methodNotFound.with(message: "method not found: \(method)"))
        }
    }

    private func requiredChannel(_ params: WireJSON) -> (String, NamespaceOptions)? {
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
    private func publication(_ params: WireJSON) -> Result<(data: WireJSON, tags: [String: String]), RelayError> {
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

    private func idempotencyKey(_ params: WireJSON) -> String? {
        params["idempotency_key"]?.stringValue ?? self.request.head.headers.first(name: "idempotency-key")
    }

    private func publishOne(
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

    private func publish(_ params: WireJSON) {
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

    private func broadcast(_ params: WireJSON) {
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

    private func presence(_ params: WireJSON, stats: Bool) {
        guard let (channel, options) = self.requiredChannel(params) else { return }
        guard options.presence else {
            self.respondError(RelayError.notAvailable.with(message: "not available: presence is off in this namespace"))
            return
        }
        self.relay.presence(channel: channel, stats: stats, on: self.request.eventLoop).whenComplete { outcome in
            self.respond(outcome)
        }
    }

    private func history(_ params: WireJSON) {
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

    private func historyRemove(_ params: WireJSON) {
        guard let (channel, _) = self.requiredChannel(params) else { return }
        self.relay.engine.removeHistory(channel: channel, on: self.request.eventLoop).whenComplete { outcome in
            self.respond(outcome.map { WireJSON.object([:]) })
        }
    }

    /// Runs `body` on every connection of `user` (and `client`, if given) on every loop.
    private func forEachConnection(
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

    private func unsubscribe(_ params: WireJSON) {
        guard let channel = params["channel"]?.stringValue else {
            self.respondError(RelayError.badRequest.with(message: "bad request: channel must be a string"))
            return
        }
        if self.forEachConnection(of: params, { $0.unsubscribeByServer(channel) }) {
            self.respond(.success(.object([:])))
        }
    }

    private func disconnect(_ params: WireJSON) {
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

    private func channels(_ params: WireJSON) {
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

    private func info() {
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

    // MARK: REST resources

    private func stats() {
        let relay = self.relay
        relay.hub.collect(on: self.request.eventLoop) { hub in
            (
                counters: hub.counters,
                connections: hub.connections.count,
                subscribers: hub.subscribers.mapValues(\.count)
            )
        }.and(relay.engine.stats(on: self.request.eventLoop)).whenComplete { outcome in
            guard case .success((let perLoop, let engine)) = outcome else {
                self.respondProblem(.internalServerError, "statistics could not be collected")
                return
            }
            let counters = perLoop.reduce(RelayCounters()) { $0 + $1.counters }
            var subscribers: [String: Int] = [:]
            for loop in perLoop { subscribers.merge(loop.subscribers, uniquingKeysWith: +) }
            var namespaces: [String: (channels: Int, subscriptions: Int)] = [:]
            for (channel, count) in subscribers {
                let namespace = ChannelName(channel)?.namespace ?? "default"
                namespaces[namespace, default: (0, 0)].channels += 1
                namespaces[namespace, default: (0, 0)].subscriptions += count
            }
            let document: WireJSON = .object([
                "connections": .number(String(perLoop.reduce(0) { $0 + $1.connections })),
                "connectionsAccepted": .number(String(counters.connectionsAccepted)),
                "channels": .number(String(subscribers.count)),
                "subscriptions": .number(String(subscribers.values.reduce(0, +))),
                "commandsIn": .number(String(counters.commandsIn)),
                "pushesOut": .number(String(counters.pushesOut)),
                "publicationsDropped": .number(String(counters.publicationsDropped)),
                "slowDisconnects": .number(String(counters.slowDisconnects)),
                "closingConnections": .number(String(counters.closingConnections)),
                "uptimeSeconds": .number(String(Int(Date().timeIntervalSince(relay.startedAt)))),
                "engine": .object([
                    "type": .string(relay.configuration.engine.type.rawValue),
                    "ready": .bool(relay.engine.health.ready),
                    "channels": .number(String(engine.channels)),
                    "streams": .number(String(engine.streams)),
                ]),
                "namespaces": .object(
                    namespaces.mapValues {
                        .object([
                            "channels": .number(String($0.channels)),
                            "subscriptions": .number(String($0.subscriptions)),
                        ])
                    }
                ),
            ])
            self.respondJSON(.ok, document)
        }
    }

    private func listNamespaces() {
        self.respondJSON(.ok, .object(["namespaces": .object(self.relay.namespaces.all.mapValues(Self.wire))]))
    }

    private static func wire(_ options: NamespaceOptions) -> WireJSON {
        let data = (try? JSONEncoder().encode(options)) ?? Data("{}".utf8)
        return (try? WireJSON.parse(data)) ?? .object([:])
    }

    private func namespace(_ name: String) {
        guard NamespaceOptions.isValidName(name) else {
            self.respondProblem(.notFound, "\"\(name)\" is not a namespace name (1 to 64 letters, digits, '_' or '-')")
            return
        }
        let store = self.relay.namespaces
        switch self.request.head.method {
        case .GET:
            guard let options = store[name] else {
                self.respondProblem(.notFound, "no namespace \"\(name)\"")
                return
            }
            self.respondJSON(.ok, Self.wire(options))
        case .PUT, .PATCH:
            let isPatch = self.request.head.method == .PATCH
            let body: WireJSON
            do {
                body = try WireJSON.parse(self.body.readableBytesView)
            } catch {
                self.respondProblem(.badRequest, "the body is not JSON: \(error)")
                return
            }
            guard case .object(let members) = body else {
                self.respondProblem(.badRequest, "$: expected an object of namespace options")
                return
            }
            var merged = members
            if isPatch {
                guard let existing = store[name], case .object(let current) = Self.wire(existing) else {
                    self.respondProblem(.notFound, "no namespace \"\(name)\" to patch; PUT creates one")
                    return
                }
                merged = current.merging(members.filter { $0.value != .null }) { $1 }
                for (key, value) in members where value == .null { merged[key] = nil }
            }
            let options: NamespaceOptions
            do {
                options = try WireJSON.object(merged).configValue.decodeStrictly(NamespaceOptions.self)
            } catch let error as ConfigValidationError {
                self.respondProblem(.badRequest, error.issues.map(\.description).joined(separator: "; "))
                return
            } catch {
                self.respondProblem(.badRequest, "\(error)")
                return
            }
            let problems = options.problems()
            guard problems.isEmpty else {
                self.respondProblem(.badRequest, problems.map { "$.\($0.key): \($0.message)" }.joined(separator: "; "))
                return
            }
            store.update(on: self.request.eventLoop) { namespaces -> Bool in
                let created = namespaces[name] == nil
                if isPatch && created { throw NamespaceStoreError(message: "no namespace \"\(name)\"") }
                namespaces[name] = options
                return created
            }.whenComplete { outcome in
                switch outcome {
                case .success(let created): self.respondJSON(created ? .created : .ok, Self.wire(options))
                case .failure(let error):
                    self.respondProblem(.internalServerError, "the namespace could not be saved: \(error)")
                }
            }
        case .DELETE:
            store.update(on: self.request.eventLoop) { $0.removeValue(forKey: name) != nil }.whenComplete { outcome in
                switch outcome {
                case .success(true):
                    // Subscribers of the namespace's channels are unsubscribed: their channel is gone.
                    _ = self.relay.hub.collect(on: self.request.eventLoop) { hub in
                        for connection in hub.connections.values {
                            for channel in connection.subscribedChannels
                            where ChannelName(channel)?.namespace == name {
                                connection.unsubscribeByServer(channel)
                            }
                        }
                    }
                    self.response.respond(GatewayResponse(status: .noContent))
                case .success(false):
                    self.respondProblem(.notFound, "no namespace \"\(name)\"")
                case .failure(let error):
                    self.respondProblem(.internalServerError, "the namespace could not be saved: \(error)")
                }
            }
        default:
            self.respondProblem(.methodNotAllowed, "namespaces take GET, PUT, PATCH and DELETE")
        }
    }

    // MARK: Responses

    private static func errorObject(_ error: RelayError) -> WireJSON {
        .object(["error": .object(["code": .number(String(error.code)), "message": .string(error.message)])])
    }

    private func respond(_ outcome: Result<WireJSON, any Error>) {
        switch outcome {
        case .success(let result): self.respondJSON(.ok, .object(["result": result]))
        case .failure(let error as RelayError): self.respondError(error)
        case .failure(let error): self.respondError(RelayError(engineFailure: error))
        }
    }

    private func respondError(_ error: RelayError) {
        self.respondJSON(.ok, Self.errorObject(error))
    }

    private func respondJSON(_ status: HTTPResponseStatus, _ document: WireJSON) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        var body = document.encoded
        body.writeStaticString("\n")
        self.response.respond(GatewayResponse(status: status, headers: headers, body: body))
    }

    /// A problem document, as the gateway renders its own (``ProblemDetails``), with `headers`
    /// (a `WWW-Authenticate` challenge, say) added.
    func respondProblem(_ status: HTTPResponseStatus, _ detail: String, headers: HTTPHeaders = [:]) {
        if headers.isEmpty {
            self.response.respondWithProblem(status, detail: detail)
            return
        }
        let problem = ProblemDetails(
            status: status,
            detail: detail,
            instance: self.request.path,
            requestID: self.request.requestID
        )
        var headers = headers
        headers.add(name: "content-type", value: "application/problem+json")
        headers.add(name: "cache-control", value: "no-store")
        self.response.respond(
            GatewayResponse(status: status, headers: headers, body: problem.jsonBody(allocator: ByteBufferAllocator()))
        )
    }
}

/// Compares secrets in time independent of where they differ.
func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
    let left = Array(lhs.utf8)
    let right = Array(rhs.utf8)
    var difference = UInt8(left.count == right.count ? 0 : 1)
    for index in 0..<max(left.count, right.count) {
        difference |= (index < left.count ? left[index] : 0) ^ (index < right.count ? right[index] : 0)
    }
    return difference == 0
}
