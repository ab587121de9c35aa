import EthicalGateway
import Foundation
import NIOCore
import NIOHTTP1

/// Our own REST resources: `GET /api/stats` and the namespaces (`GET /api/namespaces`,
/// `GET`/`PUT`/`PATCH`/`DELETE /api/namespaces/{name}`), answered with HTTP statuses and problem
/// documents; namespace changes go through the ``NamespaceStore`` (shared through the engine
/// when it is Redis).
extension RelayAPI {
    func stats() {
        let relay = self.relay
        relay.hub.collect(on: self.request.eventLoop) { hub in
            (
                counters: hub.counters,
                connections: hub.connections.count,
                uniConnections: hub.connections.values.filter { $0.transport.isUnidirectional }.count,
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
                "uniConnections": .number(String(perLoop.reduce(0) { $0 + $1.uniConnections })),
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

    func listNamespaces() {
        self.respondJSON(.ok, .object(["namespaces": .object(self.relay.namespaces.all.mapValues(Self.wire))]))
    }

    static func wire(_ options: NamespaceOptions) -> WireJSON {
        let data = (try? JSONEncoder().encode(options)) ?? Data("{}".utf8)
        return (try? WireJSON.parse(data)) ?? .object([:])
    }

    func namespace(_ name: String) {
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
}
